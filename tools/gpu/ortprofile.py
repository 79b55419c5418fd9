# Sums an ONNX Runtime profile (JSON) per op type and provider: where a model's time goes.
# Usage: python3 ortprofile.py <folder of profiles>
import json, sys, glob, collections, os
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    events = json.load(open(f))
    runs = max(1, sum(1 for e in events if e.get("name") == "model_run"))
    agg = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            agg[(e["args"].get("op_name"), e["args"].get("provider"))] += e["dur"]
    total = sum(agg.values())
    print(f"== {os.path.basename(f)}: {runs} runs, kernel time per run {total / runs / 1000:.2f} ms")
    for (op, prov), d in agg.most_common(14):
        print(f"  {op or '?':28s} {prov or '?':26s} {d / runs / 1000:8.3f} ms")
