"""The experiment configs, shipped inside the package as ``remax_tf.configs``.

setup.py maps this folder to the package ``remax_tf.configs`` (package data:
``*/*.textproto``), so an installed remax_tf (wheel or editable) reads them
with ``importlib.resources``; see ``remax_tf/config/shipped.py``. In the source
tree the configs stay here, at the top level.
"""
