# torchvision's ImageNet evaluation transform done with PIL and numpy, timed per sample on one
# thread: the PIL side of `HeteroBatch.Bench prep` (run them alternately on the same files).
#   /usr/bin/python3 tools/pil_preprocess.py <folder> [--pattern 'img*.jpg'] [--limit N] [--draft] [--passes N]
# Every file's bytes are read into memory first; then each is opened, converted to RGB, resized
# with its shorter side to 256 (bilinear, antialiased as PIL always resizes), centre-cropped to
# 224 (offsets rounded half to even, as torchvision rounds them), turned into float32 / 255,
# normalised with ImageNet's mean and std and laid out channels first (C, H, W), contiguous.
# --draft lets PIL's JPEG decoder reduce the image by 1/2, 1/4 or 1/8 first (Image.draft), as
# HeteroBatch's fast decode mode does.
import argparse, glob, io, os, time
import numpy as np
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


def resized_size(w, h, size=256):
    # torchvision.transforms.functional.resize with one int: the shorter side to size, the other truncated
    if w <= h:
        return size, int(size * h / w)
    return int(size * w / h), size


def preprocess(data, draft=False, crop=224):
    img = Image.open(io.BytesIO(data))
    w, h = resized_size(*img.size)
    if draft:
        img.draft("RGB", (w, h))
    img = img.convert("RGB").resize((w, h), Image.BILINEAR)
    left, top = int(round((w - crop) / 2.0)), int(round((h - crop) / 2.0))
    img = img.crop((left, top, left + crop, top + crop))
    x = np.asarray(img, dtype=np.float32) / 255.0
    return np.ascontiguousarray(((x.transpose(2, 0, 1) - MEAN) / STD).astype(np.float32))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--pattern", default="img*.jpg")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--draft", action="store_true")
    ap.add_argument("--label", default="500x375")
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.folder, a.pattern)))
    if a.limit:
        files = files[: a.limit]
    blobs = [open(f, "rb").read() for f in files]
    for b in blobs[:10]:
        preprocess(b, a.draft)  # warm-up
    start = time.perf_counter()
    for _ in range(a.passes):
        for b in blobs:
            out = preprocess(b, a.draft)
    ms = (time.perf_counter() - start) * 1000 / (len(blobs) * a.passes)
    affinity = ",".join(str(p) for p in sorted(os.sched_getaffinity(0)))
    mode = "draft" if a.draft else "exact"
    print(f"pil {mode} {a.label}: {ms:.3f} ms/sample over {len(blobs) * a.passes} "
          f"(processors {affinity}; pillow {Image.__version__}, numpy {np.__version__}; out {out.shape} {out.dtype})")


if __name__ == "__main__":
    main()
