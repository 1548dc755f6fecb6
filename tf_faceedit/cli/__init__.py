"""The command-line tools, one module per command; each only parses its flags and calls the library.

    train     -> tf_faceedit.training.driver        evaluate -> tf_faceedit.eval.evaluation
    edit      -> tf_faceedit.apps.edit              augment  -> tf_faceedit.apps.augment
    demo      -> tf_faceedit.apps.demo.page         export   -> tf_faceedit.serving.export_lib
    serve_client -> tf_faceedit.serving.client      grpc_server -> tf_faceedit.serving.grpc_server (test server)

`common` holds what they share (quiet TensorFlow start-up, logging, one-line errors, `--model`). They run as
`tf-faceedit CMD` (`tf_faceedit/__main__.py`) or `python -m tf_faceedit.CMD` (a shim at the old path).
"""
