"""tf_faceedit: attention-guided face-editing GANs for TensorFlow 2 / Keras 3."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
REQUIREMENTS = [
    line.strip()
    for line in (HERE / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="tf_faceedit",
    version="0.1.0",
    description="Attention-guided face-editing GANs (SaGAN, AttentionGAN, PGGAN completion, Fader, IcGAN) "
    "for TensorFlow 2 / Keras 3",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["tf_faceedit", "tf_faceedit.*"]),
    install_requires=REQUIREMENTS,
    extras_require={"test": ["pytest>=8"], "demo": ["gradio>=6", "playwright>=1.40"],
                    "jax": ["jax[cpu]>=0.4.30"]},  # --backend=jax (CPU build; on GPUs install jax[cuda13])
    include_package_data=True,
)
