;;; (lab nix-integration): the original module's interface, now backed by
;;; lab-core through (lab ffi).
;;;
;;; Same names, arguments and result shapes as the original: metadata is an
;;; alist as guile-json's json-string->scm gives it (string keys, vectors for
;;; lists). What changed underneath: the whole fleet is read by one nix
;;; process (cached), names reach nix as data, one broken host no longer
;;; fails the rest, and the reboot sequence follows dependencies, not only
;;; rebootOrder.
;;;
;;; The fleet is the parameter `current-lab-fleet`: an alist naming the
;;; source as lab's requests do, e.g. '(("file" . "hosts/fleet.nix")) or
;;; '(("flake" . ".")). Its default comes from LAB_FLEET_FILE, LAB_FLAKE or
;;; LAB_JSON_FILE, else the flake in the current directory.

(define-module (lab nix-integration)
  #:use-module (lab ffi)
  #:use-module (srfi srfi-1)
  #:export (current-lab-fleet
            get-machine-metadata-from-nix
            get-all-nix-machines
            get-reboot-sequence-from-nix
            build-nix-config
            evaluate-nix-expr))

(define (default-fleet)
  (cond ((getenv "LAB_FLEET_FILE") => (lambda (f) `(("file" . ,f))))
        ((getenv "LAB_FLAKE") => (lambda (f) `(("flake" . ,f))))
        ((getenv "LAB_JSON_FILE") => (lambda (f) `(("jsonFile" . ,f))))
        (else '())))

(define current-lab-fleet (make-parameter (default-fleet)))

(define (evaluate-nix-expr expr)
  "Evaluate the Nix expression EXPR and return the result (#f on failure,
as the original did). EXPR reaches nix as an argument, never through a shell."
  (catch #t
    (lambda () (lab-eval-nix `(("expr" . ,expr))))
    (lambda _ #f)))

(define (get-machine-metadata-from-nix machine-name)
  "The lab.machine metadata of MACHINE-NAME, with hostname and services."
  (let ((shown (lab-show (cons `("machine" . ,machine-name) (current-lab-fleet)))))
    (cdr (car shown))))

(define (get-all-nix-machines)
  "The names of the fleet's managed machines, sorted."
  (sort (map car (lab-machines (current-lab-fleet))) string<?))

(define (get-reboot-sequence-from-nix)
  "The machines in reboot order, each as (name . metadata): dependencies
first, then rebootOrder, then name."
  (let ((machines (lab-machines (current-lab-fleet)))
        (sequence (lab-sequence (current-lab-fleet))))
    (map (lambda (entry)
           (let ((name (assoc-ref entry "machine")))
             (cons name (assoc-ref machines name))))
         (vector->list sequence))))

(define (build-nix-config machine-name)
  "Build MACHINE-NAME's system (its toplevel) on this host with nix and
return its store path. Raises a lab error when the machine is unknown or
the build fails."
  (assoc-ref (lab-build (cons `("machine" . ,machine-name) (current-lab-fleet))) "outPath"))
