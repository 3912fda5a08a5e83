;;; (lab ffi): lab-core's C API for Guile, through (system foreign).
;;;
;;; Every procedure takes an optional request (an alist, sent as JSON) and
;;; returns the result as guile-json's json-string->scm gives it: objects as
;;; alists with string keys, arrays as vectors. Errors raise a &lab-error
;;; carrying the status code and the error object (kind, message, machine,
;;; file). The library is found through LAB_FFI_LIB (a path to liblab.so),
;;; then the install prefix (PREFIX/lib beside PREFIX/share/guile/site), then
;;; the system linker path.

(define-module (lab ffi)
  #:use-module (system foreign)
  #:use-module (rnrs bytevectors)
  #:use-module (ice-9 exceptions)
  #:use-module (json)
  #:export (&lab-error lab-error? lab-error-status lab-error-object lab-error-message
            lab-library-path lab-version lab-abi-version lab-schema
            lab-machines lab-show lab-check lab-sequence lab-plan lab-graph
            lab-health lab-eval-nix))

(define-exception-type &lab-error &error
  make-lab-error lab-error?
  (status lab-error-status)
  (object lab-error-object))

(define (lab-error-message e)
  (let ((m (assoc-ref (lab-error-object e) "message"))) (if (string? m) m "")))

(define (prefix-library)
  ;; This file is PREFIX/share/guile/site/3.0/lab/ffi.scm when installed.
  (let ((here (current-filename)))
    (and here
         (let ((candidate (string-append (dirname here) "/../../../../../lib/liblab.so")))
           (and (file-exists? candidate) candidate)))))

(define lab-library-path
  (or (getenv "LAB_FFI_LIB") (prefix-library) "liblab"))

(define liblab (dynamic-link lab-library-path))

(define (bind name ret args)
  (pointer->procedure ret (dynamic-func name liblab) args))

(define %string-free (bind "lab_string_free" void '(*)))
(define %version (bind "lab_version" '* '()))
(define %abi-version (bind "lab_abi_version" uint32 '()))

(define (take-string ptr)
  ;; Copy out as UTF-8, then give the memory back to lab.
  (let ((text (pointer->string ptr -1 "UTF-8")))
    (%string-free ptr)
    text))

(define (finish status out)
  (let* ((ptr (dereference-pointer (bytevector->pointer out)))
         (value (json-string->scm (take-string ptr))))
    (if (= status 0)
        value
        (raise-exception
         (make-exception (make-lab-error status value)
                         (make-exception-with-message
                          (let ((m (assoc-ref value "message"))) (if (string? m) m "lab error")))
                         (make-exception-with-irritants (list value)))))))

(define (request-call name)
  (let ((f (bind name int '(* *))))
    (lambda* (#:optional (request '()))
      (let ((out (make-bytevector (sizeof '*) 0))
            (json (scm->json-string request)))
        (finish (f (string->pointer json "UTF-8") (bytevector->pointer out)) out)))))

(define (lab-version) (pointer->string (%version) -1 "UTF-8"))
(define (lab-abi-version) (%abi-version))

(define lab-schema
  (let ((f (bind "lab_schema" int '(*))))
    (lambda ()
      (let ((out (make-bytevector (sizeof '*) 0)))
        (finish (f (bytevector->pointer out)) out)))))

(define lab-machines (request-call "lab_machines"))
(define lab-show (request-call "lab_show"))
(define lab-check (request-call "lab_check"))
(define lab-sequence (request-call "lab_sequence"))
(define lab-plan (request-call "lab_plan"))
(define lab-graph (request-call "lab_graph"))
(define lab-health (request-call "lab_health"))
(define lab-eval-nix (request-call "lab_eval_nix"))
