"""Dataset and model cards for GPT3Mix artifacts: `CardData` dataclasses rendered from the Jinja templates in
`gpt3mix_hf/hub/templates/` with `huggingface_hub.DatasetCard` / `ModelCard`, sharing one provenance table."""

from .common import CITATION, hub_id_of, provenance_table
from .dataset_card import GPT3MixDatasetCardData, build_dataset_card, size_category
from .model_card import (
    GPT3MixModelCardData,
    final_eval_results,
    model_card_from_folder,
    model_card_from_trainer,
    write_trainer_model_card,
)

__all__ = [
    "CITATION",
    "GPT3MixDatasetCardData",
    "GPT3MixModelCardData",
    "build_dataset_card",
    "final_eval_results",
    "hub_id_of",
    "model_card_from_folder",
    "model_card_from_trainer",
    "provenance_table",
    "size_category",
    "write_trainer_model_card",
]
