"""Pretrained weights of the learned methods (``TASK_METHOD.pt``), each with the JSON that made it.

Produced by ``scripts/train_shipped.sh`` (``odl-learned train``); loaded by
:func:`odl_learned.reconstructors.learned_methods.load_pretrained`.
"""
