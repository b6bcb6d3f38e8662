"""DeepLab2 numbers that more than one part of remax_tf uses, named once.

Each comes with where DeepLab2 sets it; a config field left empty takes it.
"""

from typing import Tuple

# ASPP atrous rates of kMaX's auxiliary semantic decoder: DeepLab2's kMaX
# configs (configs/*/kmax_deeplab/*.textproto, ``decoder { atrous_rates: 6
# atrous_rates: 12 atrous_rates: 18 }``); ReMaX's semantic heads use the same.
ASPP_ATROUS_RATES: Tuple[int, ...] = (6, 12, 18)
