;;; (lab ffi): lab-core's C API for Guile, through (system foreign).
;;;
;;; Every procedure takes an optional request (an alist, sent as JSON) and
;;; returns the result as guile-json's json-string->scm gives it: objects as
;;; alists with string keys, arrays as vectors. Errors raise a &lab-error
;;; carrying the status code and the error object (kind, message, machine,
;;; file). lab-check and lab-health do not raise when the result is merely
;;; "not clean" (LAB_ERR_NOT_CLEAN with a report): they return the report,
;;; whose "clean" / per-check results say so, as `lab check --json` prints
;;; it. The library is found through LAB_FFI_LIB (a path to liblab.so),
;;; then the install prefix (PREFIX/lib beside PREFIX/share/guile/site), then
;;; the system linker path; when none loads, the error says so and how to
;;; point LAB_FFI_LIB at liblab.so. A library whose lab_abi_version is
;;; not the one this module was written for is refused at load, before
;;; anything calls it with arguments of another shape.
;;;
;;; Long runs (lab-deploy, lab-reboot, lab-orchestrate) take the request and
;;; an event procedure, called with each event (as `lab … --json` prints
;;; it, parsed) on the calling thread while the run goes; an optional
;;; cancel handle from make-lab-cancel stops the run from another thread
;;; (lab-cancel!). An exception in the event procedure stops the run and is
;;; raised again once it returned.

(define-module (lab ffi)
  #:use-module (system foreign)
  #:use-module (rnrs bytevectors)
  #:use-module (ice-9 exceptions)
  #:use-module (srfi srfi-9)
  #:use-module (json)
  #:export (&lab-error lab-error? lab-error-status lab-error-object lab-error-message
            lab-library-path lab-version lab-abi-version lab-schema lab-fleet-schema
            lab-machines lab-show lab-check lab-sequence lab-plan lab-graph
            lab-health lab-eval-nix lab-build
            make-lab-cancel lab-cancel? lab-cancel!
            lab-deploy lab-reboot lab-orchestrate))

(define-exception-type &lab-error &error
  make-lab-error lab-error?
  (status lab-error-status)
  (object lab-error-object))

(define (lab-error-message e)
  (let* ((object (lab-error-object e))
         (m (and (list? object) (assoc-ref object "message"))))
    (if (string? m) m (format #f "lab status ~a" (lab-error-status e)))))

(define (prefix-library)
  ;; This file is PREFIX/share/guile/site/3.0/lab/ffi.scm when installed.
  (let ((here (current-filename)))
    (and here
         (let ((candidate (string-append (dirname here) "/../../../../../lib/liblab.so")))
           (and (file-exists? candidate) candidate)))))

(define lab-library-path
  (or (getenv "LAB_FFI_LIB") (prefix-library) "liblab"))

(define (dlopen-message e)
  ;; Guile's message is a format string with the reason among its irritants.
  (or (and (exception-with-message? e)
           (false-if-exception
            (apply format #f (exception-message e)
                   (if (exception-with-irritants? e) (exception-irritants e) '()))))
      "dlopen failed"))

(define liblab
  ;; A bare dlopen message ("file not found") does not tell where lab
  ;; looked or what to set: say both.
  (with-exception-handler
      (lambda (e)
        (raise-exception
         (make-exception
          (make-error)
          (make-exception-with-origin 'lab-ffi)
          (make-exception-with-message
           (string-append
            "cannot load lab's C library from \"" lab-library-path "\""
            (if (getenv "LAB_FFI_LIB") " (LAB_FFI_LIB)" " (LAB_FFI_LIB is unset, none beside this module)")
            ": "
            (dlopen-message e)
            "; build it with `cargo build -p lab-ffi` and set LAB_FFI_LIB to the path of liblab.so"
            " (e.g. LAB_FFI_LIB=target/debug/liblab.so)"))
          (make-exception-with-irritants (list lab-library-path)))))
    (lambda () (dynamic-link lab-library-path))
    #:unwind? #t))

(define (bind name ret args)
  (pointer->procedure ret (dynamic-func name liblab) args))

(define %string-free (bind "lab_string_free" void '(*)))
(define %version (bind "lab_version" '* '()))
(define %abi-version (bind "lab_abi_version" uint32 '()))

;; LAB_ABI_VERSION of the lab.h this module follows (lab-ffi/tests/guile_abi.rs
;; keeps the two equal).
(define %module-abi-version 1)

(let ((library (%abi-version)))
  (unless (= library %module-abi-version)
    (raise-exception
     (make-exception
      (make-error)
      (make-exception-with-origin 'lab-ffi)
      (make-exception-with-message
       (format #f "~a has lab ABI version ~a, but this (lab ffi) module needs ABI version ~a; \
use the liblab.so built with this module (set LAB_FFI_LIB to it), or the module installed with that library"
               lab-library-path library %module-abi-version))
      (make-exception-with-irritants (list lab-library-path library %module-abi-version))))))

(define (take-string ptr)
  ;; Copy out as UTF-8, then give the memory back to lab.
  (let ((text (pointer->string ptr -1 "UTF-8")))
    (%string-free ptr)
    text))

(define (finish status out)
  (let* ((ptr (dereference-pointer (bytevector->pointer out)))
         (value (json-string->scm (take-string ptr))))
    (finish-value status value)))

(define (finish-value status value)
  ;; VALUE for status 0, else a &lab-error carrying it.
  (if (= status 0)
      value
      (raise-exception
       (make-exception (make-lab-error status value)
                       (make-exception-with-message
                        (let ((m (and (list? value) (assoc-ref value "message"))))
                          (if (string? m) m (format #f "lab status ~a" status))))
                       (make-exception-with-irritants (list value))))))

(define %not-clean 4) ; LAB_ERR_NOT_CLEAN

(define (error-object? value)
  ;; What lab returns for a failure: an object with a string "message".
  (and (list? value) (string? (assoc-ref value "message"))))

(define* (request-call name #:key report)
  ;; REPORT: the call returns a report that may merely be "not clean"
  ;; (lab_check, lab_health); then the report is the result, not an error.
  ;; A not-clean status carrying an error object (e.g. a fleet managing no
  ;; configuration) still raises.
  (let ((f (bind name int '(* *))))
    (lambda* (#:optional (request '()))
      (let* ((out (make-bytevector (sizeof '*) 0))
             (json (scm->json-string request))
             (status (f (string->pointer json "UTF-8") (bytevector->pointer out))))
        (if (and report (= status %not-clean))
            (let ((value (json-string->scm (take-string (dereference-pointer (bytevector->pointer out))))))
              (if (error-object? value)
                  (finish-value status value)
                  value))
            (finish status out))))))

(define-record-type <lab-cancel>
  (%make-lab-cancel pointer)
  lab-cancel?
  (pointer lab-cancel-pointer))

(define %cancel-new (bind "lab_cancel_new" '* '()))
(define %cancel (bind "lab_cancel" void '(*)))
(define %cancel-free-pointer (dynamic-func "lab_cancel_free" liblab))

(define (make-lab-cancel)
  "A cancel handle for a long run; freed by lab when it is collected."
  (%make-lab-cancel (make-pointer (pointer-address (%cancel-new)) %cancel-free-pointer)))

(define (lab-cancel! cancel)
  "Ask the runs holding CANCEL to stop: the steps in flight finish, nothing
new starts. Callable from any thread."
  (%cancel (lab-cancel-pointer cancel)))

(define (run-call name)
  (let ((f (bind name int '(* * * * *))))
    (lambda* (request #:optional (on-event (lambda (event) #f)) (cancel (make-lab-cancel)))
      (let* ((failure #f)
             (callback
              (procedure->pointer
               void
               (lambda (event user-data)
                 ;; Nothing may unwind through lab's frames: keep the
                 ;; exception, stop the run, raise it after it returned.
                 (unless failure
                   (with-exception-handler
                       (lambda (e) (set! failure e) (lab-cancel! cancel))
                     (lambda () (on-event (json-string->scm (pointer->string event -1 "UTF-8"))))
                     #:unwind? #t)))
               '(* *)))
             (out (make-bytevector (sizeof '*) 0))
             (status (f (string->pointer (scm->json-string request) "UTF-8") callback %null-pointer
                        (lab-cancel-pointer cancel) (bytevector->pointer out))))
        (cond (failure
               (take-string (dereference-pointer (bytevector->pointer out)))
               (raise-exception failure))
              (else (finish status out)))))))

(define lab-deploy (run-call "lab_deploy"))
(define lab-reboot (run-call "lab_reboot"))
(define lab-orchestrate (run-call "lab_orchestrate"))

(define (lab-version) (pointer->string (%version) -1 "UTF-8"))
(define (lab-abi-version) (%abi-version))

(define lab-schema
  (let ((f (bind "lab_schema" int '(*))))
    (lambda ()
      (let ((out (make-bytevector (sizeof '*) 0)))
        (finish (f (bytevector->pointer out)) out)))))

(define lab-fleet-schema
  (let ((f (bind "lab_fleet_schema" int '(*))))
    (lambda ()
      (let ((out (make-bytevector (sizeof '*) 0)))
        (finish (f (bytevector->pointer out)) out)))))

(define lab-machines (request-call "lab_machines"))
(define lab-show (request-call "lab_show"))
(define lab-check (request-call "lab_check" #:report #t))
(define lab-sequence (request-call "lab_sequence"))
(define lab-plan (request-call "lab_plan"))
(define lab-graph (request-call "lab_graph"))
(define lab-health (request-call "lab_health" #:report #t))
(define lab-eval-nix (request-call "lab_eval_nix"))
(define lab-build (request-call "lab_build"))
