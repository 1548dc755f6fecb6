"""The web demo: `handlers` (model loading, `DemoHandlers`: plain numpy, testable without a browser) and `page`
(the Gradio page built on them: `build_demo`, `run`)."""
