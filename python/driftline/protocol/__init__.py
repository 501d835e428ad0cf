"""Open Inference Protocol (KServe v2 REST, Triton binary tensor extension): messages (:mod:`.types`), codecs
(:mod:`.codec`) and datatypes (:mod:`.datatypes`); import each name from the module that defines it."""
