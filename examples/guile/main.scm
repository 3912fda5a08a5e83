#!/usr/bin/env -S guile --no-auto-compile -s
!#
;;; The original tool's `machines` and `orchestrator sequence` commands,
;;; ported to (lab nix-integration) as it now is: results are alists as
;;; guile-json gives them (string keys, vectors for lists).
;;;
;;;   LAB_FFI_LIB=target/release/liblab.so LAB_FLEET_FILE=hosts/fleet.nix \
;;;     guile -L lab-ffi/guile examples/guile/main.scm machines
;;;   ... examples/guile/main.scm sequence

(use-modules (ice-9 format)
             (lab nix-integration))

(define (log-info message) (format (current-error-port) "[INFO] ~a\n" message))

(define (cmd-machines)
  "List all configured machines from NixOS"
  (log-info "Listing machines from NixOS configurations...")
  (let ((machines (get-all-nix-machines)))
    (format #t "Configured Machines (from NixOS):\n")
    (for-each (lambda (machine)
                (let ((metadata (get-machine-metadata-from-nix machine)))
                  (format #t "  ~a (~a) - ~a\n"
                          machine
                          (assoc-ref metadata "role")
                          (string-join (vector->list (assoc-ref metadata "groups")) ", "))))
              machines)))

(define (cmd-orchestrator-sequence)
  "Show the orchestrated reboot sequence"
  (log-info "Getting reboot sequence from NixOS configurations...")
  (let ((sequence (get-reboot-sequence-from-nix)))
    (format #t "Reboot Sequence:\n")
    (for-each (lambda (machine-data)
                (let ((machine (car machine-data))
                      (metadata (cdr machine-data)))
                  (format #t "  ~a. ~a (delay: ~a seconds)\n"
                          (assoc-ref metadata "rebootOrder")
                          machine
                          (assoc-ref (assoc-ref metadata "orchestration") "rebootDelay"))))
              sequence)))

(define (main args)
  (cond ((member "sequence" args) (cmd-orchestrator-sequence))
        (else (cmd-machines))))

(main (command-line))
