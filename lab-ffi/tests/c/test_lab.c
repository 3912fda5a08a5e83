/* Exercises every function of lab.h through the C ABI: results, error
 * paths (NULL, bad UTF-8, bad JSON, unknown machine) and freeing. Run by
 * lab-ffi/tests/c_api.rs, under valgrind when it is installed.
 *
 * usage: test_lab FLEET_JSON_FILE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s FLEET_JSON_FILE CONTROLLER_CHECK_FLEET_JSON_FILE\n", argv[0]);
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

    if (failures) {
        fprintf(stderr, "%d failed\n", failures);
        return 1;
    }
    printf("c api: all checks passed\n");
    return 0;
}
