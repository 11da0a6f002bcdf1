;; A component of 3 core instances with a memory each: within the instance share, past the
;; memory share (2). Sluice must refuse it when it loads.
(component
  (core module $m (memory 1))
  (core instance (instantiate $m))
  (core instance (instantiate $m))
  (core instance (instantiate $m))
)
