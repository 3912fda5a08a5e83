;;; The Guile module against the real liblab (SRFI-64). Run by
;;; lab-ffi/tests/guile.rs with LAB_FFI_LIB, LAB_FLEET_FILE and EXPECTED
;;; (a JSON file of what lab-core returns for the same fleet).

(use-modules (srfi srfi-64)
             (ice-9 exceptions)
             (ice-9 rdelim)
             (json)
             (lab ffi)
             (lab nix-integration))

(define expected
  (call-with-input-file (getenv "EXPECTED") json->scm))

(define (rss-kb)
  (call-with-input-file "/proc/self/status"
    (lambda (port)
      (let loop ((line (read-line port)))
        (cond ((eof-object? line) 0)
              ((string-prefix? "VmRSS:" line)
               (string->number (car (filter (lambda (s) (not (string-null? s)))
                                            (cdr (string-split line #\space))))))
              (else (loop (read-line port))))))))

(test-runner-current (test-runner-simple))
(test-begin "lab-guile")

(test-equal "abi version" 1 (lab-abi-version))
(test-assert "version" (string? (lab-version)))
(test-equal "fleet schema, as lab schema --fleet" "lab fleet" (assoc-ref (lab-fleet-schema) "title"))

(test-equal "get-all-nix-machines"
  (vector->list (assoc-ref expected "names"))
  (get-all-nix-machines))

(test-equal "get-machine-metadata-from-nix"
  (assoc-ref (assoc-ref expected "machines") "sleeper-service")
  (get-machine-metadata-from-nix "sleeper-service"))

(test-equal "get-reboot-sequence-from-nix follows the dependency order"
  (vector->list (assoc-ref expected "sequence"))
  (map car (get-reboot-sequence-from-nix)))

(test-equal "sequence entries carry the metadata"
  (assoc-ref (assoc-ref expected "machines") "router")
  (cdr (car (get-reboot-sequence-from-nix))))

(test-equal "evaluate-nix-expr" 3 (evaluate-nix-expr "1 + 2"))
(test-equal "evaluate-nix-expr keeps the original's #f on failure" #f (evaluate-nix-expr "throw \"no\""))
(test-equal "lab-eval-nix takes arguments as data"
  "a'; rm -rf /!"
  (lab-eval-nix '(("expr" . "{ x }: x + \"!\"") ("args" . (("x" . "a'; rm -rf /"))))))

(test-assert "an unknown machine raises a lab error with the object"
  (guard (e ((lab-error? e)
             (and (= (lab-error-status e) 2)
                  (string=? (assoc-ref (lab-error-object e) "kind") "unknown-machine")
                  (string-contains (lab-error-message e) "sleeper-service"))))
    (get-machine-metadata-from-nix "sleeper-servic")
    #f))

(test-assert "a bad request raises"
  (guard (e ((lab-error? e) (= (lab-error-status e) 1)))
    (lab-machines '(("flakes" . ".")))
    #f))

(let ((path (parameterize ((current-lab-fleet `(("file" . ,(getenv "LAB_BUILDABLE_FLEET")))))
              (build-nix-config "tiny"))))
  (test-assert "build-nix-config returns the built store path"
    (and (string-prefix? "/nix/store/" path) (file-exists? path))))

(test-assert "build-nix-config of the JSON contract raises"
  (guard (e ((lab-error? e) (= (lab-error-status e) 1)))
    (parameterize ((current-lab-fleet `(("jsonFile" . ,(getenv "LAB_JSON_FLEET")))))
      (build-nix-config "router"))
    #f))

(let* ((events '())
       (result (lab-deploy `(("jsonFile" . ,(getenv "LAB_JSON_FLEET")) ("dryRun" . #t))
                           (lambda (event) (set! events (cons event events)))))
       (kinds (map (lambda (e) (assoc-ref e "event")) events)))
  (test-assert "lab-deploy dry run returns the plans and actions"
    (and (vector? (assoc-ref result "plans")) (vector? (assoc-ref result "actions"))))
  (test-assert "lab-deploy sends its events to the procedure"
    (and (member "wave-started" kinds) (member "step-finished" kinds)))
  (test-equal "the last event is run-finished" "run-finished" (car kinds)))

(test-equal "lab-reboot dry run, no event procedure"
  "reboot"
  (assoc-ref (vector-ref (assoc-ref (lab-reboot `(("jsonFile" . ,(getenv "LAB_JSON_FLEET")) ("dryRun" . #t)))
                                    "plans") 0)
             "kind"))

(test-equal "an exception in the event procedure stops the run and is raised"
  'stop-here
  (catch 'stop-here
    (lambda ()
      (lab-reboot `(("jsonFile" . ,(getenv "LAB_JSON_FLEET")) ("dryRun" . #t))
                  (lambda (event) (throw 'stop-here)))
      'not-raised)
    (lambda (key . args) key)))

(test-assert "a run cancelled first raises; nothing was done"
  (let ((cancel (make-lab-cancel)))
    (lab-cancel! cancel)
    (guard (e ((lab-error? e) (and (= (lab-error-status e) 5)
                                   (equal? (assoc-ref (lab-error-object e) "actions") #()))))
      (lab-reboot `(("jsonFile" . ,(getenv "LAB_JSON_FLEET")) ("dryRun" . #t)) (lambda (e) #t) cancel)
      #f)))

(test-assert "check is clean" (assoc-ref (lab-check (current-lab-fleet)) "clean"))
(test-equal "plan waves follow the fleet's maxParallel"
  (assoc-ref expected "waves")
  (vector-length (assoc-ref (lab-plan (cons '("kind" . "reboot") (current-lab-fleet))) "waves")))

;; 10,000 calls do not grow the process: every string lab returns is freed.
(let ((json-fleet `(("jsonFile" . ,(getenv "LAB_JSON_FLEET")))))
  (do ((i 0 (1+ i))) ((= i 1000)) (lab-machines json-fleet))
  (gc)
  (let ((before (rss-kb)))
    (do ((i 0 (1+ i))) ((= i 10000)) (lab-machines json-fleet))
    (gc)
    (let ((growth (- (rss-kb) before)))
      (format #t "rss growth over 10000 calls: ~a kB\n" growth)
      (test-assert "10,000 calls do not grow memory (< 8 MB)" (< growth 8192)))))

(define failed (test-runner-fail-count (test-runner-current)))
(test-end "lab-guile")
(exit (if (zero? failed) 0 1))
