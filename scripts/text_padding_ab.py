"""97-frame demo generation with the engine's cross-attention padding cut vs all 512 text keys, interleaved.

    python scripts/text_padding_ab.py
"""
import time, torch
import motioncache.denoiser as dn
from motioncache.engine import Engine
from motioncache.model_files import load_components
from motioncache.request import GenerationRequest
torch.set_num_threads(2)
e = Engine(load_components("models/demo"))
real = dn.padding_bias
def off(x, dtype): return x.shape[1], None
res = {"cut": [], "all 512": []}
for rep in range(3):
    for name, fn in (("cut", real), ("all 512", off)):
        dn.padding_bias = fn
        t = time.perf_counter()
        list(e.generate(GenerationRequest(prompt="a red circle moves right over a grey background", seed=0, num_frames=97)))
        res[name].append(time.perf_counter() - t)
print({k: ["%.1f" % x for x in v] for k, v in res.items()})
