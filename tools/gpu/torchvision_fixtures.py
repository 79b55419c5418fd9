# Reference preprocessing made by torchvision (PIL) on the GPU machine, for the tests here:
# a few small photo-like JPEGs of different shapes, and what torchvision's ImageNet evaluation
# pipeline (Resize(256), CenterCrop(224)) and a plain Resize((224, 224)) make of them, as uint8
# HWC arrays (before ToTensor and Normalize, which are exact arithmetic).
#   python3 tools/gpu/torchvision_fixtures.py <folder>
import io, os, sys
import numpy as np
import torchvision, torchvision.transforms as T
from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
for name, (w, h) in {"wide": (320, 240), "tall": (240, 320), "square": (300, 300), "small": (200, 150)}.items():
    low = rng.random((6, 8, 3)) * 255
    img = Image.fromarray(low.astype(np.uint8)).resize((w, h), Image.BICUBIC)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-12, 12, (h, w, 3))
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(f"{out}/{name}.jpg", "JPEG", quality=90)
    src = Image.open(f"{out}/{name}.jpg").convert("RGB")
    crop = T.Compose([T.Resize(256), T.CenterCrop(224)])(src)
    np.save(f"{out}/{name}.centercrop.npy", np.asarray(crop, dtype=np.uint8))
    stretch = T.Resize((224, 224))(src)
    np.save(f"{out}/{name}.stretch.npy", np.asarray(stretch, dtype=np.uint8))
    print(name, src.size, "->", crop.size, stretch.size)
print("torchvision", torchvision.__version__, "pillow", Image.__version__)
