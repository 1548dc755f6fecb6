"""Applications built on the library: editing photos (`edit`), augmenting a dataset (`augment`) and the web demo
(`demo/`: request handlers and the Gradio page). They use `tf_faceedit.load` (`api.py`) for inference and never
import the training driver."""
