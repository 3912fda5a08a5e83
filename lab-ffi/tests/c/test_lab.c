/* Exercises every function of lab.h through the C ABI: results, error
 * paths (NULL, bad UTF-8, bad JSON, unknown machine) and freeing. Run by
 * lab-ffi/tests/c_api.rs, under valgrind when it is installed.
 *
 * usage: test_lab FLEET_JSON CONTROLLER_CHECK_JSON STATE_DIR LOOPBACK_JSON */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include "lab.h"

static int failures = 0;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

typedef LabStatus (*request_fn)(const char *, char **);

/* Calls f(request), checks the status and that the output contains `needle`. */
static void expect(const char *what, request_fn f, const char *request, LabStatus status, const char *needle) {
    char *out = NULL;
    LabStatus got = f(request, &out);
    CHECK(got == status, "%s: status %d, expected %d (%s)", what, (int)got, (int)status, out ? out : "NULL");
    CHECK(out != NULL, "%s: no output", what);
    if (out && needle) CHECK(strstr(out, needle) != NULL, "%s: output lacks %s: %.300s", what, needle, out);
    lab_string_free(out);
}

/* Calls from several threads at once: each gets its own, correct answer. */
static void *hammer(void *request) {
    for (int i = 0; i < 50; i++) {
        char *out = NULL;
        if (lab_sequence((const char *)request, &out) != LAB_OK || !strstr(out, "\"router\"")) {
            lab_string_free(out);
            return (void *)1;
        }
        lab_string_free(out);
    }
    return NULL;
}

/* What a run's callback saw. */
struct seen {
    int events;
    int waves;
    int finished;
    atomic_int step_started;
};

static void on_event(const char *event_json, void *user_data) {
    struct seen *seen = user_data;
    seen->events++;
    if (strstr(event_json, "\"event\":\"wave-started\"")) seen->waves++;
    if (strstr(event_json, "\"event\":\"run-finished\"")) seen->finished++;
    if (strstr(event_json, "\"event\":\"step-started\"")) atomic_store(&seen->step_started, 1);
}

typedef LabStatus (*run_fn)(const char *, LabEventCallback, void *, const LabCancel *, char **);

/* Runs f(request) with on_event, checks the status and a needle in the result. */
static void expect_run(const char *what, run_fn f, const char *request, const LabCancel *cancel, struct seen *seen,
                       LabStatus status, const char *needle) {
    char *out = NULL;
    LabStatus got = f(request, on_event, seen, cancel, &out);
    CHECK(got == status, "%s: status %d, expected %d (%.400s)", what, (int)got, (int)status, out ? out : "NULL");
    CHECK(out != NULL, "%s: no output", what);
    if (out && needle) CHECK(strstr(out, needle) != NULL, "%s: output lacks %s: %.300s", what, needle, out);
    lab_string_free(out);
}

struct canceller {
    LabCancel *cancel;
    struct seen *seen;
};

/* Fires the cancel handle once the run started a step (the rebootDelay). */
static void *cancel_when_started(void *arg) {
    struct canceller *c = arg;
    for (int i = 0; i < 6000 && !atomic_load(&c->seen->step_started); i++) usleep(10000);
    lab_cancel(c->cancel);
    return NULL;
}

/* deploy / reboot / build: dry runs with events, cancelling, error paths.
 * Only the loopback fleet is ever run for real, against a closed port. */
static void long_runs(const char *fleet, const char *state, const char *loopback) {
    char dry[4096], real[4096], loop[4096], build[4096];
    snprintf(dry, sizeof dry, "{\"jsonFile\": \"%s\", \"dryRun\": true, \"maxParallel\": 2}", fleet);
    snprintf(real, sizeof real, "{\"jsonFile\": \"%s\", \"stateDir\": \"%s\"}", fleet, state);
    snprintf(loop, sizeof loop, "{\"jsonFile\": \"%s\", \"stateDir\": \"%s\"}", loopback, state);
    snprintf(build, sizeof build, "{\"jsonFile\": \"%s\", \"machine\": \"router\"}", fleet);

    struct seen deploy = {0};
    expect_run("deploy dry run", lab_deploy, dry, NULL, &deploy, LAB_OK, "\"actions\"");
    CHECK(deploy.waves > 0 && deploy.finished == 1, "deploy dry run: %d waves, %d run-finished events", deploy.waves,
          deploy.finished);

    struct seen reboot = {0};
    expect_run("reboot dry run", lab_reboot, dry, NULL, &reboot, LAB_OK, "\"action\":\"reboot\"");
    CHECK(reboot.waves > 0 && reboot.finished == 1 && reboot.events > 10, "reboot dry run: %d events", reboot.events);

    struct seen quiet = {0};
    char *out = NULL;
    CHECK(lab_reboot(dry, NULL, NULL, NULL, &out) == LAB_OK, "reboot without a callback");
    lab_string_free(out);

    /* Cancelled before it starts: nothing is touched, the report says so. */
    LabCancel *cancel = lab_cancel_new();
    lab_cancel(cancel);
    lab_cancel(cancel);
    expect_run("reboot cancelled first", lab_reboot, real, cancel, &quiet, LAB_ERR_CANCELLED, "\"interrupted\"");
    lab_cancel_free(cancel);

    /* Cancelled from another thread while it waits its rebootDelay. */
    struct seen running = {0};
    struct canceller c = {lab_cancel_new(), &running};
    pthread_t thread;
    pthread_create(&thread, NULL, cancel_when_started, &c);
    expect_run("reboot cancelled by a thread", lab_reboot, loop, c.cancel, &running, LAB_ERR_CANCELLED,
               "\"interrupted\"");
    pthread_join(thread, NULL);
    lab_cancel_free(c.cancel);
    CHECK(atomic_load(&running.step_started), "the run never started a step");

    expect_run("deploy NULL", lab_deploy, NULL, NULL, &quiet, LAB_ERR_INVALID_ARGUMENT, "NULL");
    expect_run("deploy bad JSON", lab_deploy, "{nope", NULL, &quiet, LAB_ERR_INVALID_ARGUMENT, "invalid-argument");
    expect_run("reboot unknown field", lab_reboot, "{\"dryrun\": true}", NULL, &quiet, LAB_ERR_INVALID_ARGUMENT,
               "dryrun");
    snprintf(build, sizeof build, "{\"jsonFile\": \"%s\", \"goal\": \"up\"}", fleet);
    expect_run("deploy bad goal", lab_deploy, build, NULL, &quiet, LAB_ERR_INVALID_ARGUMENT, "\\\"goal\\\" is");
    snprintf(build, sizeof build, "{\"jsonFile\": \"%s\", \"machine\": \"router\"}", fleet);
    expect_run("deploy of the JSON contract", lab_deploy, real, NULL, &quiet, LAB_ERR_INVALID_ARGUMENT,
               "JSON contract");
    CHECK(lab_deploy(dry, NULL, NULL, NULL, NULL) == LAB_ERR_INVALID_ARGUMENT, "deploy(out NULL)");
    expect("build of the JSON contract", lab_build, build, LAB_ERR_INVALID_ARGUMENT, "JSON contract");
    lab_cancel(NULL);
    lab_cancel_free(NULL);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s FLEET_JSON CONTROLLER_CHECK_JSON STATE_DIR LOOPBACK_JSON\n", argv[0]);
        return 2;
    }
    char plan[4096], seq[4096], badon[4096], health[4096];
    snprintf(plan, sizeof plan, "{\"jsonFile\": \"%s\", \"kind\": \"reboot\", \"maxParallel\": 2}", argv[1]);
    snprintf(seq, sizeof seq, "{\"jsonFile\": \"%s\", \"on\": \"@dns\", \"withDependencies\": true}", argv[1]);
    snprintf(badon, sizeof badon, "{\"jsonFile\": \"%s\", \"on\": \"@dsn\"}", argv[1]);
    snprintf(health, sizeof health, "{\"jsonFile\": \"%s\"}", argv[2]);
    char request[4096], show[4096], missing[4096];
    snprintf(request, sizeof request, "{\"jsonFile\": \"%s\"}", argv[1]);
    snprintf(show, sizeof show, "{\"jsonFile\": \"%s\", \"machine\": \"sleeper-service\"}", argv[1]);
    snprintf(missing, sizeof missing, "{\"jsonFile\": \"%s\", \"machine\": \"sleeper-servic\"}", argv[1]);

    CHECK(lab_abi_version() == LAB_ABI_VERSION, "ABI %u, header %d", lab_abi_version(), LAB_ABI_VERSION);
    CHECK(strlen(lab_version()) > 0, "empty version");

    char *schema = NULL;
    CHECK(lab_schema(&schema) == LAB_OK, "schema");
    CHECK(schema && strstr(schema, "\"rebootOrder\""), "schema lacks rebootOrder");
    lab_string_free(schema);
    CHECK(lab_schema(NULL) == LAB_ERR_INVALID_ARGUMENT, "schema(NULL)");
    char *fleet_schema = NULL;
    CHECK(lab_fleet_schema(&fleet_schema) == LAB_OK, "fleet schema");
    CHECK(fleet_schema && strstr(fleet_schema, "\"title\":\"lab fleet\""), "fleet schema lacks its title");
    lab_string_free(fleet_schema);
    CHECK(lab_fleet_schema(NULL) == LAB_ERR_INVALID_ARGUMENT, "fleet schema(NULL)");

    expect("machines", lab_machines, request, LAB_OK, "\"application-server\"");
    expect("show", lab_show, show, LAB_OK, "\"sleeper-service\"");
    expect("show unknown", lab_show, missing, LAB_ERR_NOT_FOUND, "\"kind\":\"unknown-machine\"");
    expect("show without machine", lab_show, request, LAB_ERR_INVALID_ARGUMENT, "needs \\\"machine\\\"");
    expect("machines NULL", lab_machines, NULL, LAB_ERR_INVALID_ARGUMENT, "NULL");
    expect("machines bad JSON", lab_machines, "{nope", LAB_ERR_INVALID_ARGUMENT, "\"kind\":\"invalid-argument\"");
    expect("machines bad UTF-8", lab_machines, "{\"file\": \"\xff\xfe\"}", LAB_ERR_INVALID_ARGUMENT, "UTF-8");
    expect("machines unknown field", lab_machines, "{\"flakes\": \".\"}", LAB_ERR_INVALID_ARGUMENT, "flakes");
    expect("machines missing file", lab_machines, "{\"jsonFile\": \"/nonexistent/fleet.json\"}", LAB_ERR_EVALUATION,
           "/nonexistent/fleet.json");
    CHECK(lab_machines(request, NULL) == LAB_ERR_INVALID_ARGUMENT, "machines(out NULL)");

    expect("check", lab_check, request, LAB_OK, "\"clean\":true");
    expect("sequence", lab_sequence, seq, LAB_OK, "\"router\"");
    expect("sequence bad --on", lab_sequence, badon, LAB_ERR_INVALID_ARGUMENT, "did you mean `@dns`");
    expect("plan", lab_plan, plan, LAB_OK, "\"waves\"");
    expect("plan without kind", lab_plan, request, LAB_ERR_INVALID_ARGUMENT, "\"kind\"");
    expect("graph", lab_graph, request, LAB_OK, "\"sleeper-service\"");
    expect("health", lab_health, health, LAB_ERR_NOT_CLEAN, "\"lonely\"");
    expect("eval", lab_eval_nix, "{\"expr\": \"{ name }: name + \\\"!\\\"\", \"args\": {\"name\": \"$(x)\"}}", LAB_OK,
           "\"$(x)!\"");
    expect("eval error", lab_eval_nix, "{\"expr\": \"throw \\\"boom\\\"\"}", LAB_ERR_EVALUATION, "boom");
    lab_string_free(NULL);

    pthread_t threads[4];
    for (int t = 0; t < 4; t++) pthread_create(&threads[t], NULL, hammer, request);
    for (int t = 0; t < 4; t++) {
        void *result = NULL;
        pthread_join(threads[t], &result);
        CHECK(result == NULL, "thread %d got a wrong answer", t);
    }

    long_runs(argv[1], argv[3], argv[4]);

    if (failures) {
        fprintf(stderr, "%d failed\n", failures);
        return 1;
    }
    printf("c api: all checks passed\n");
    return 0;
}
