/* The reboot sequence of a fleet, from C through liblab.
 *
 *   cargo build -p lab-ffi
 *   cc -I lab-ffi/include examples/c/sequence.c -L target/debug -llab -Wl,-rpath,$PWD/target/debug -o sequence
 *   ./sequence '{"file": "hosts/fleet.nix", "maxParallel": 2}'
 *
 * Prints lab's JSON answer; on error prints the error object and exits with
 * lab's status code. */
#include <stdio.h>
#include "lab.h"

int main(int argc, char **argv) {
    if (lab_abi_version() != LAB_ABI_VERSION) {
        fprintf(stderr, "liblab ABI %u, but this program was built for %d\n", lab_abi_version(), LAB_ABI_VERSION);
        return 100;
    }
    const char *request = argc > 1 ? argv[1] : "{}";
    char *out = NULL;
    LabStatus status = lab_sequence(request, &out);
    fprintf(status == LAB_OK ? stdout : stderr, "%s\n", out);
    lab_string_free(out);
    return (int)status;
}
