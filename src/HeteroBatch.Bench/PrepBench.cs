using System.Diagnostics;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;
using Microsoft.ML.OnnxRuntime.Tensors;
using SkiaSharp;

namespace HeteroBatch.Bench;

/// <summary>
/// prep: CPU image preprocessing alone, one thread, per sample (beside tools/pil_preprocess.py on
/// the same files): every file's bytes are read into memory first, then each is decoded,
/// resized (Resize(256) + CenterCrop(224)) and normalised into a float [3, 224, 224] sample, in
/// exact mode and in fast mode; on the folder of 500×375 JPEGs and on a folder of 4000×3000
/// ones. Then fast against exact on the large photos: pixel differences, and the outputs of
/// the built-in mobilenet (random weights) on one CPU unit.
/// </summary>
public static class PrepBench
{
    public static void Run(EngineContext context, BenchOptions options)
    {
        int count = options.FileCounts[0];
        FilesBench.MakeImages(options.ImageFolder, count);
        var large = Path.Combine(options.ImageFolder, options.LargeGrain == 12 ? "large" : $"large-grain{options.LargeGrain}");
        MakeLarge(large, options.LargeImages, options.LargeGrain);
        var small = Directory.EnumerateFiles(options.ImageFolder, "img*.jpg").OrderBy(f => f, StringComparer.Ordinal).Take(count).ToList();
        var big = Directory.EnumerateFiles(large, "*.jpg").OrderBy(f => f, StringComparer.Ordinal).Take(options.LargeImages).ToList();
        var smallBytes = small.Select(File.ReadAllBytes).ToList();
        var bigBytes = big.Select(File.ReadAllBytes).ToList();
        Console.WriteLine($"prep: one thread (allowed processors {string.Join(",", Libc.CurrentThreadAffinity() ?? Array.Empty<int>())}), {VectorResampler.IsSupported switch { true => "vectorised (AVX2)", false => "scalar reference" }}, " +
                          $"TurboJPEG {(TurboJpeg.IsAvailable ? "found" : "absent")}; " +
                          $"{smallBytes.Count} files of 500×375 ({smallBytes.Sum(b => (long)b.Length) / Math.Max(1, smallBytes.Count) / 1000} KB each on average), " +
                          $"{bigBytes.Count} of 4000×3000 ({bigBytes.Sum(b => (long)b.Length) / Math.Max(1, bigBytes.Count) / 1000} KB, grain ±{options.LargeGrain}; {large})");

        var exact = ImagePreprocessing.ImageNet;
        var fast = new ImagePreprocessing { DecodeMode = DecodeMode.Fast };
        var batch = new TensorBatch("input", new long[] { 3, 224, 224 }, 1);
        double Time(List<byte[]> files, ImagePreprocessing p, int passes)
        {
            // warm-up, not timed: 300 samples of a large folder (the JIT's tiers settle), each file of a small one once
            int warm = files.Count > 16 ? 300 : files.Count;
            for (int i = 0; i < warm; i++) ImageInput.Load(files[i % files.Count], "x", batch, 0, p);
            long start = Stopwatch.GetTimestamp();
            for (int pass = 0; pass < passes; pass++)
                foreach (var f in files) ImageInput.Load(f, "x", batch, 0, p);
            return Stopwatch.GetElapsedTime(start).TotalMilliseconds / (files.Count * passes);
        }
        void Reference(List<byte[]> files)
        {
            long start = Stopwatch.GetTimestamp();
            foreach (var f in files) ImageInput.LoadReference(f, "x", batch, 0, exact);
            Console.WriteLine($"csharp reference 500x375: {Stopwatch.GetElapsedTime(start).TotalMilliseconds / files.Count:F3} ms/sample over {files.Count} (the scalar path before this change)");
        }
        if (smallBytes.Count > 0)
        {
            Console.WriteLine($"csharp exact 500x375: {Time(smallBytes, exact, 1):F3} ms/sample over {smallBytes.Count}");
            Console.WriteLine($"csharp fast 500x375: {Time(smallBytes, fast, 1):F3} ms/sample over {smallBytes.Count}");
            if (options.PrepReference) Reference(smallBytes);
        }
        if (bigBytes.Count == 0) return;
        double e = Time(bigBytes, exact, 1), f = Time(bigBytes, fast, 3);
        Console.WriteLine($"csharp exact 4000x3000: {e:F3} ms/sample over {bigBytes.Count}");
        Console.WriteLine($"csharp fast 4000x3000: {f:F3} ms/sample over {bigBytes.Count * 3}");
        Console.WriteLine($"csharp fast/exact speed-up 4000x3000: {e / f:F2}x");
        if (DecodeAlone(bigBytes, fast, 3) is { } alone)
            Console.WriteLine($"csharp TurboJPEG decode alone at the fast size 4000x3000: {alone.Ms:F3} ms/sample ({alone.Width}x{alone.Height}) over {bigBytes.Count * 3}; " +
                              $"fast mode's bound with nothing after the decode: {e / alone.Ms:F2}x");
        if (options.PrepAgreement) Agreement(context, bigBytes, exact, fast);
    }

    /// <summary>
    /// The fast mode's floor: TurboJPEG decoding each file at the size fast mode decodes it at (the DCT scale), and
    /// nothing after; null where TurboJPEG is absent. The files are taken to be of one size (the first one's).
    /// </summary>
    private static unsafe (double Ms, int Width, int Height)? DecodeAlone(List<byte[]> files, ImagePreprocessing fast, int passes)
    {
        if (!TurboJpeg.IsAvailable || files.Count == 0) return null;
        nint handle = TurboJpeg.Create();
        try
        {
            if (!TurboJpeg.TryHeader(handle, files[0], out int sw, out int sh)) return null;
            var g = fast.Geometry(sw, sh, 224, 224);
            var (w, h, _) = fast.DecodeSize(sw, sh, g.Width, g.Height);
            var pixels = new byte[(long)w * h * 4];
            fixed (byte* p = pixels)
            {
                foreach (var f in files) TurboJpeg.TryDecode(handle, f, p, w, h, w * 4); // warm-up
                long start = Stopwatch.GetTimestamp();
                for (int pass = 0; pass < passes; pass++)
                    foreach (var f in files)
                        if (!TurboJpeg.TryDecode(handle, f, p, w, h, w * 4)) return null;
                return (Stopwatch.GetElapsedTime(start).TotalMilliseconds / (files.Count * passes), w, h);
            }
        }
        finally { TurboJpeg.Destroy(handle); }
    }

    /// <summary>Fast against exact on the same large photos: the pixels (uint8), and mobilenet's outputs on one CPU unit.</summary>
    private static void Agreement(EngineContext context, List<byte[]> files, ImagePreprocessing exact, ImagePreprocessing fast)
    {
        int n = files.Count;
        var pe = new TensorBatch("input", new long[] { 224, 224, 3 }, n, null, TensorElementType.UInt8);
        var pf = new TensorBatch("input", new long[] { 224, 224, 3 }, n, null, TensorElementType.UInt8);
        for (int i = 0; i < n; i++) { ImageInput.Load(files[i], "x", pe, i, exact); ImageInput.Load(files[i], "x", pf, i, fast); }
        var (a, b) = ((byte[])pe.Data, (byte[])pf.Data);
        int max = 0, equal = 0;
        double sum = 0;
        for (int i = 0; i < a.Length; i++) { int d = Math.Abs(a[i] - b[i]); max = Math.Max(max, d); sum += d; if (d == 0) equal++; }
        Console.WriteLine($"fast vs exact pixels 4000x3000: mean |difference| {sum / a.Length:F3} of 255, largest {max}, {100.0 * equal / a.Length:F1} % equal, over {n} images");

        var unit = UnitDiscovery.Discover(new DiscoveryRequest { Grouping = new CpuGrouping(CpuGroupingMode.All) }).First(u => u.Kind == UnitKind.Cpu && u.Available);
        var worker = context.Workers.For(unit);
        var model = ModelCatalog.Resolve("mobilenet");
        var (oe, of) = worker.Invoke(() =>
        {
            var session = worker.Load(model);
            var spec = session.Signature.Inputs[0];
            TensorBatch Inputs(ImagePreprocessing p)
            {
                var t = new TensorBatch(spec.Name, spec.SampleShape, n);
                for (int i = 0; i < n; i++) ImageInput.Load(files[i], "x", t, i, p);
                return t;
            }
            var outE = session.AllocateOutputs(n);
            var outF = session.AllocateOutputs(n);
            session.Run(new[] { Inputs(exact) }, outE, 0, n);
            session.Run(new[] { Inputs(fast) }, outF, 0, n);
            return (outE[0], outF[0]);
        }).GetAwaiter().GetResult();
        Console.WriteLine($"fast vs exact mobilenet (random weights) outputs: {OutputAgreement.Compare(oe, of)}");
    }

    /// <summary>
    /// A few distinct photo-like 4000×3000 JPEGs (quality 90): a smooth random field plus grain of ±<paramref name="grain"/>
    /// on each channel (12, as the 500×375 ones, makes files of about 3 MB; less grain, smaller files that spend less
    /// of their decoding in the entropy decoder, which no DCT scaling shortens).
    /// </summary>
    public static void MakeLarge(string folder, int count, int grain)
    {
        Directory.CreateDirectory(folder);
        NativeLibraries.Register();
        for (int k = 0; k < count; k++)
        {
            var path = Path.Combine(folder, $"large{k:D2}.jpg");
            if (File.Exists(path)) continue;
            var rng = new Random(100 + k);
            File.WriteAllBytes(path, FilesBench.PhotoJpeg(rng, (64, 48), (4000, 3000), -grain, grain + 1));
        }
    }
}
