;;; (lab nix-integration) on a fleet built on the original design's
;;; lab.machine module returns the machines, as the original did. Run by
;;; lab-ffi/tests/original_module.rs with LAB_FFI_LIB, LAB_FLEET_FILE (the
;;; fleet on the original module) and EXPECTED (what lab-core returns for
;;; the same hosts on lab's own module).

(use-modules (srfi srfi-64)
             (json)
             (lab nix-integration))

(define expected
  (call-with-input-file (getenv "EXPECTED") json->scm))

(test-runner-current (test-runner-simple))
(test-begin "lab-guile-original-module")

(test-equal "get-all-nix-machines"
  (vector->list (assoc-ref expected "names"))
  (get-all-nix-machines))

(test-equal "get-machine-metadata-from-nix"
  (assoc-ref (assoc-ref expected "machines") "sleeper-service")
  (get-machine-metadata-from-nix "sleeper-service"))

(test-equal "get-reboot-sequence-from-nix"
  (vector->list (assoc-ref expected "sequence"))
  (map car (get-reboot-sequence-from-nix)))

(test-end "lab-guile-original-module")
