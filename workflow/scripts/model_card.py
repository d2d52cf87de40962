"""Rule model_card: the trained model's card (architecture, inference settings, validation range)."""

from carmask.logs import setup
from carmask.network.spec import Prediction
from carmask.stages.model_card import validation_range, write_card
from carmask.stages.threshold import resolve

setup(snakemake.log[0])
write_card(
    snakemake.params.cfg,
    Prediction(
        batch_size=snakemake.params.batch_size,
        tta=snakemake.params.tta,
        precision=snakemake.params.precision,
    ),
    threshold=resolve(snakemake.params.threshold, snakemake.input.get("threshold")),
    refine=snakemake.params.refine,
    validation=validation_range(snakemake.input.val, snakemake.input.predictions, snakemake.input.rle),
    model_path=snakemake.input.model,
    out=snakemake.output.card,
)
