"""A dataset's COCO panoptic ``categories`` list and its images' ``image_id``s.

What a writer of COCO panoptic predictions (``remax-predict``, the trainer's
``evaluator_options.save_predictions``) puts next to the segments:
:class:`remax_tf.evaluation.coco_panoptic.CocoPanopticWriter` writes them.
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import List
from typing import Sequence
from typing import Union

from remax_tf.data.datasets import DatasetDescriptor


def image_ids(names: Sequence[str]) -> List[Union[int, str]]:
    """COCO ``image_id`` per output name: the number for an all-digit name
    (COCO's ``000000142238`` -> 142238, as in its ground truth), else the name.
    Names are used throughout if numbers would collide."""
    ids: List[Union[int, str]] = [int(n) if n.isdigit() else n for n in names]
    if len(set(ids)) < len(ids):
        return list(names)
    return ids


def coco_categories(descriptor: DatasetDescriptor) -> List[Dict[str, Any]]:
    """The COCO ``categories`` list of a dataset (original category ids)."""
    things = set(descriptor.thing_class_ids)
    return [
        {
            "id": int(descriptor.original_category_ids[i]),
            "name": descriptor.class_names[i],
            "isthing": int(i in things),
            "color": list(descriptor.class_colors[i]),
        }
        for i in sorted(descriptor.thing_stuff_class_ids)
    ]
