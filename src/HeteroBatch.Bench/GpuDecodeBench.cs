using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Data.Gpu;
using HeteroBatch.Engine.Models;
using HeteroBatch.Engine.Runtime;
using HeteroBatch.Engine.Units;
using HeteroBatch.Engine.Units.Backends;
using SkiaSharp;

namespace HeteroBatch.Bench;

/// <summary>
/// Files → results with the GPU decoding: JPEG bytes (read into memory before timing, as the
/// anchor e2e2.py does) → nvJPEG on each GPU → the model's uint8-input form bound by device
/// address → top-1, on one GPU and on every GPU (one decoder, two device batches and one session
/// per GPU, the files split between them). Per GPU a decoding thread fills one device batch
/// while the GPU's inference thread runs the other. Also: decoding alone, the largest pixel
/// difference of GPU-decoded against CPU exact-decoded images, and the per-sample cosine of the
/// model's outputs on each. Writes gpu-decode.json under --out.
/// </summary>
public static class GpuDecodeBench
{
    public sealed record Throughput(string Precision, int Gpus, int Files, int Batch, double ImagesPerSecond, double WallMs, int CpuFallbacks, double InferenceBusyShare)
    {
        /// <summary>Files whose top-1 class equals the first run's at this precision (every file, unless rows went astray or GPUs disagree).</summary>
        public int Top1SameAsFirstRun { get; set; }
        internal int[] Top1 { get; init; } = Array.Empty<int>();
    }
    public sealed record Agreement(string Precision, int Samples, double MinCosine, double MeanCosine, int Top1Agree, double MaxAbsOutputDifference);
    public sealed record PixelCheck(string Filter, int Samples, int MaxAbsDifference, double MeanAbsDifference, int BilinearFallbacks);
    public sealed class Results
    {
        public MachineInfo Machine { get; set; } = MachineInfo.Read();
        public DateTimeOffset StartedAt { get; set; } = DateTimeOffset.UtcNow;
        public string Model { get; set; } = "";
        public string ImageFolder { get; set; } = "";
        public long MeanFileBytes { get; set; }
        public bool HardwareDecoder { get; set; }
        public List<double> DecodeOnlyImagesPerSecond { get; set; } = new();
        public List<PixelCheck> Pixels { get; set; } = new();
        public List<Agreement> Agreements { get; set; } = new();
        public List<Throughput> Runs { get; set; } = new();
        public long? PeakResidentBytes { get; set; }
        public List<string> Notes { get; set; } = new();
    }

    public static void Run(BenchOptions options)
    {
        var results = new Results { Model = options.Models[0], ImageFolder = options.ImageFolder };
        int count = options.FileCounts.Max();
        int batch = options.Batches[0];
        var paths = EnsureImages(options.ImageFolder, count);
        var bytes = paths.Select(File.ReadAllBytes).ToArray();
        results.MeanFileBytes = (long)bytes.Average(b => (double)b.Length);
        var why = GpuJpegDecoder.WhyUnavailable(0);
        if (why != null) throw new InvalidOperationException($"GPU decoding is not available: {why}");
        int gpus = Enumerable.Range(0, 64).TakeWhile(i => GpuJpegDecoder.WhyUnavailable(i) == null).Count();
        if (options.GpuLimit > 0) gpus = Math.Min(gpus, options.GpuLimit);
        var model = ModelCatalog.Resolve(options.Models[0]);
        Console.WriteLine($"gpu-decode bench: {count} files ({results.MeanFileBytes} bytes on average) from {options.ImageFolder}, {model.Name}, batch {batch}, {gpus} GPU(s)");
        var settings = new EngineOptions();
        var input = ModelInput(model);
        var decodeSettings = GpuDecodeSettings.ForInput(input, ImagePreprocessing.ImageNet, batch) with
        {
            UseHardware = options.NvjpegHardware,
            Trace = options.TraceGpu ? step => { Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {step}"); Console.Error.Flush(); } : null,
        };

        // decoding alone on GPU 0
        using (var decoder = new GpuJpegDecoder(0, decodeSettings))
        {
            results.HardwareDecoder = decoder.UsesHardware;
            Console.WriteLine($"nvJPEG backend: {(decoder.UsesHardware ? "hardware (JPEG engines)" : "default (hybrid/GPU)")}");
            using var a = decoder.CreateBatch();
            using var b = decoder.CreateBatch();
            DecodeAll(decoder, new[] { a, b }, bytes, batch, count: Math.Min(count, 4 * batch)); // warm-up
            for (int r = 0; r < 2; r++)
            {
                var clock = Stopwatch.StartNew();
                DecodeAll(decoder, new[] { a, b }, bytes, batch, count);
                double rate = count / clock.Elapsed.TotalSeconds;
                results.DecodeOnlyImagesPerSecond.Add(Math.Round(rate, 1));
                Console.WriteLine($"decode only, gpu0: {rate:F1} images/s");
            }
        }

        // pixels: GPU against CPU exact on the first samples
        int checkCount = Math.Min(batch, Math.Min(count, 64));
        var exact = CpuExact(bytes.Take(checkCount).ToList(), paths, decodeSettings);
        byte[]? gpuPixels = null;
        foreach (var filter in new[] { GpuResizeFilter.Antialiased, GpuResizeFilter.Bilinear })
        {
            using var decoder = new GpuJpegDecoder(0, decodeSettings with { Filter = filter });
            using var into = decoder.CreateBatch();
            var status = decoder.Decode(bytes.Take(checkCount).Select(x => (ReadOnlyMemory<byte>)x).ToList(), into);
            into.Synchronize();
            var pixels = into.Download(checkCount);
            int max = 0;
            long sum = 0;
            for (int i = 0; i < pixels.Length; i++)
            {
                int d = Math.Abs(pixels[i] - exact[i]);
                max = Math.Max(max, d);
                sum += d;
            }
            var check = new PixelCheck(filter.ToString(), checkCount, max, Math.Round((double)sum / pixels.Length, 4), into.BilinearFallbacks);
            results.Pixels.Add(check);
            Console.WriteLine($"pixels, {filter}: largest |GPU - CPU exact| {max}, mean {check.MeanAbsDifference} over {checkCount} images; statuses {string.Join(",", status.GroupBy(s => s).Select(g => $"{g.Key} {g.Count()}"))}; bilinear fallbacks {into.BilinearFallbacks}");
            if (filter == GpuResizeFilter.Antialiased) gpuPixels = pixels;
        }

        foreach (var precision in options.GpuPrecisions)
        {
            var prefixed = InputPrefix.PathFor(model, precision, ImagePreprocessing.ImageNet);
            // outputs: the float model on CPU-exact floats against the prefixed model on GPU pixels, both on gpu0 at this precision
            results.Agreements.Add(CompareOutputs(model, prefixed, precision, exact, gpuPixels!, checkCount, input, settings));
            var last = results.Agreements[^1];
            Console.WriteLine($"{precision}: outputs on GPU-decoded vs CPU-exact inputs: min cosine {last.MinCosine:F6}, mean {last.MeanCosine:F6}, top-1 equal {last.Top1Agree}/{last.Samples}, max |diff| {last.MaxAbsOutputDifference:G4}");
            var lanes = new List<Lane>();
            try
            {
                for (int g = 0; g < gpus; g++) lanes.Add(Lane.Open(g, prefixed, precision, settings, decodeSettings, bytes, batch));
                for (int r = 0; r < Math.Max(1, options.Repeats); r++)
                    foreach (int g in gpus > 1 ? new[] { 1, gpus } : new[] { 1 })
                    {
                        var run = Pipeline(lanes.Take(g).ToList(), precision, bytes, batch, decodeSettings, paths);
                        var firstRun = results.Runs.FirstOrDefault(x => x.Precision == run.Precision) ?? run;
                        run.Top1SameAsFirstRun = run.Top1.Zip(firstRun.Top1).Count(p => p.First == p.Second);
                        results.Runs.Add(run);
                        Console.WriteLine($"{precision}, {g} GPU(s): {run.ImagesPerSecond:F1} images/s ({run.WallMs:F0} ms for {run.Files} files; CPU fallbacks {run.CpuFallbacks}; inference busy {run.InferenceBusyShare:P0} of the wall; top-1 as the first run {run.Top1SameAsFirstRun}/{run.Files})");
                    }
            }
            finally
            {
                foreach (var lane in lanes) lane.Dispose();
            }
        }
        results.PeakResidentBytes = Libc.PeakResidentBytes();
        Console.WriteLine($"peak RSS {results.PeakResidentBytes / (1 << 20)} MiB");
        Directory.CreateDirectory(options.Out);
        var json = Path.Combine(options.Out, "gpu-decode.json");
        File.WriteAllText(json, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"wrote {json}");
    }

    private static TensorSpec ModelInput(ModelSource model)
    {
        OrtRuntime.Initialize();
        using var o = new Microsoft.ML.OnnxRuntime.SessionOptions { GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_DISABLE_ALL };
        using var session = new Engine.Sessions.LoadedModel(model.Path, o);
        return session.Signature.Inputs.Single();
    }

    /// <summary>Decodes the first <paramref name="count"/> files through the batches in turn (no inference).</summary>
    private static void DecodeAll(GpuJpegDecoder decoder, DeviceImageBatch[] batches, byte[][] bytes, int batch, int count)
    {
        int k = 0;
        for (int start = 0; start < count; start += batch, k++)
        {
            var into = batches[k % batches.Length];
            decoder.Decode(Slice(bytes, start, Math.Min(batch, count - start)), into);
            batches[(k + 1) % batches.Length].Synchronize();
        }
        foreach (var b in batches) b.Synchronize();
    }

    private static List<ReadOnlyMemory<byte>> Slice(byte[][] bytes, int start, int n)
    {
        var list = new List<ReadOnlyMemory<byte>>(n);
        for (int i = 0; i < n; i++) list.Add(bytes[(start + i) % bytes.Length]);
        return list;
    }

    /// <summary>The CPU path's exact pixels (SkiaSharp decode, the antialiased triangle resize into the crop), HWC RGB, sample after sample.</summary>
    private static byte[] CpuExact(IReadOnlyList<byte[]> files, IReadOnlyList<string> paths, GpuDecodeSettings s)
    {
        int sample = s.Width * s.Height * 3;
        var all = new byte[files.Count * sample];
        for (int i = 0; i < files.Count; i++) CpuExactInto(files[i], paths[i], s).CopyTo(all, i * sample);
        return all;
    }

    private static byte[] CpuExactInto(byte[] file, string path, GpuDecodeSettings s)
    {
        var (pixels, w, h) = ImageInput.Decode(file, path);
        var g = s.Preprocessing.Geometry(w, h, s.Width, s.Height);
        return Resampler.ResizeWindow(pixels, w, h, w * 4, 4, g.Width, g.Height, g.Left, g.Top, s.Width, s.Height);
    }

    private static ComputeUnit Gpu(int device, Precision precision) => new()
    {
        Id = $"gpu{device}", Kind = UnitKind.Gpu, Provider = ExecutionProvider.CUDA, DeviceId = device, Precision = precision, Name = "NVIDIA GPU",
    };

    private static Engine.Sessions.LoadedModel OpenOn(string path, ComputeUnit unit, EngineOptions settings)
    {
        using var options = UnitBackends.Cuda.Options(unit, settings);
        return new Engine.Sessions.LoadedModel(path, options);
    }

    private static Agreement CompareOutputs(ModelSource model, string prefixed, Precision precision, byte[] exact, byte[] gpuPixels, int n, TensorSpec input, EngineOptions settings)
    {
        var unit = Gpu(0, precision);
        using var floatModel = OpenOn(ModelCatalog.PathFor(model, precision), unit, settings);
        using var byteModel = OpenOn(prefixed, unit, settings);
        // reference: the CPU path's float input made from the CPU-exact pixels
        var floats = new TensorBatch(input.Name, input.SampleShape, n);
        var f = floats.AsFloats();
        int plane = (int)(input.SampleShape[1] * input.SampleShape[2]);
        var p = ImagePreprocessing.ImageNet;
        for (int i = 0; i < n; i++)
            for (int px = 0; px < plane; px++)
                for (int c = 0; c < 3; c++)
                    f[(i * 3 + c) * plane + px] = exact[(i * plane + px) * 3 + c] * (1f / 255f / p.Std[c]) + (-p.Mean[c] / p.Std[c]);
        var pixels = new TensorBatch(byteModel.Signature.Inputs[0].Name, byteModel.Signature.Inputs[0].SampleShape, n, gpuPixels, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.UInt8);
        var ra = floatModel.AllocateOutputs(n);
        var rb = byteModel.AllocateOutputs(n);
        floatModel.Run(new[] { floats }, ra, 0, n);
        byteModel.Run(new[] { pixels }, rb, 0, n);
        var agreement = OutputAgreement.Compare(ra[0], rb[0]);
        int top1 = 0;
        for (int i = 0; i < n; i++) if (ArgMax(ra[0].Sample(i)) == ArgMax(rb[0].Sample(i))) top1++;
        return new Agreement(precision.ToString(), n, agreement.MinCosine, agreement.MeanCosine, top1, agreement.MaxAbsDifference);
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /// <summary>
    /// The timed pipeline on <paramref name="gpus"/> GPUs: per GPU a decoding thread (nvJPEG into
    /// a free device batch, wait, CPU fallback for what the GPU could not decode) and an inference
    /// thread (the uint8 model on the device batch, top-1 of each sample), two device batches
    /// between them. Files are split into contiguous parts, one per GPU.
    /// </summary>
    /// <summary>One GPU's decoder, its two device batches, and the session of the uint8 model with its device-input runner; warmed up at the batch size.</summary>
    private sealed class Lane : IDisposable
    {
        public required GpuJpegDecoder Decoder { get; init; }
        public required DeviceImageBatch[] Batches { get; init; }
        public required Engine.Sessions.LoadedModel Session { get; init; }
        public required Engine.Sessions.DeviceInputRunner Runner { get; init; }

        public static Lane Open(int gpu, string modelPath, Precision precision, EngineOptions settings, GpuDecodeSettings decodeSettings, byte[][] bytes, int batch)
        {
            var decoder = new GpuJpegDecoder(gpu, decodeSettings);
            DeviceImageBatch[]? batches = null;
            Engine.Sessions.LoadedModel? session = null;
            try
            {
                batches = new[] { decoder.CreateBatch(), decoder.CreateBatch() };
                session = OpenOn(modelPath, Gpu(gpu, precision), settings);
                var runner = new Engine.Sessions.DeviceInputRunner(session, gpu);
                // warm-up: the session's first run at this shape plans its convolutions
                decoder.Decode(Slice(bytes, 0, batch), batches[0]);
                batches[0].Synchronize();
                var outputs = session.AllocateOutputs(batch);
                runner.Run(batches[0], batch, outputs, 0);
                runner.Run(batches[0], batch, outputs, 0);
                return new Lane { Decoder = decoder, Batches = batches, Session = session, Runner = runner };
            }
            catch
            {
                session?.Dispose();
                if (batches != null) foreach (var b in batches) b?.Dispose();
                decoder.Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            Runner.Dispose();
            Session.Dispose();
            foreach (var b in Batches) b.Dispose();
            Decoder.Dispose();
        }
    }

    /// <summary>
    /// The timed pipeline on the GPUs of <paramref name="lanes"/>: per GPU a decoding thread
    /// (nvJPEG into a free device batch, wait, CPU fallback for what the GPU could not decode) and
    /// an inference thread (the uint8 model on the device batch, top-1 of each sample), two device
    /// batches between them. Files are split into contiguous parts, one per GPU.
    /// </summary>
    private static Throughput Pipeline(IReadOnlyList<Lane> lanes, Precision precision, byte[][] bytes, int batch, GpuDecodeSettings decodeSettings, IReadOnlyList<string> paths)
    {
        int gpus = lanes.Count;
        int count = bytes.Length;
        var top1 = new int[count];
        int fallbacks = 0;
        var busy = new double[gpus];
        {
            using var start = new ManualResetEventSlim(false);
            var threads = new List<Thread>();
            var errors = new ConcurrentQueue<Exception>();
            for (int g = 0; g < gpus; g++)
            {
                int gpu = g;
                int first = (int)((long)count * g / gpus), end = (int)((long)count * (g + 1) / gpus);
                var free = new BlockingCollection<DeviceImageBatch>();
                foreach (var b in lanes[g].Batches) free.Add(b);
                var ready = new BlockingCollection<(DeviceImageBatch Batch, int Start, int Count)>(2);
                threads.Add(new Thread(() =>
                {
                    try
                    {
                        start.Wait();
                        for (int s = first; s < end; s += batch)
                        {
                            int n = Math.Min(batch, end - s);
                            var into = free.Take();
                            var status = lanes[gpu].Decoder.Decode(Slice(bytes, s, n), into);
                            into.Synchronize();
                            for (int i = 0; i < n; i++)
                                if (status[i] is GpuDecodeStatus.NotJpeg or GpuDecodeStatus.Failed)
                                {
                                    into.Upload(i, CpuExactInto(bytes[s + i], paths[s + i], decodeSettings));
                                    Interlocked.Increment(ref fallbacks);
                                }
                            ready.Add((into, s, n));
                        }
                    }
                    catch (Exception e) { errors.Enqueue(e); }
                    finally { ready.CompleteAdding(); }
                }) { IsBackground = true, Name = $"decode gpu{gpu}" });
                threads.Add(new Thread(() =>
                {
                    try
                    {
                        var outputs = lanes[gpu].Session.AllocateOutputs(batch);
                        start.Wait();
                        foreach (var (into, s, n) in ready.GetConsumingEnumerable())
                        {
                            long t0 = Stopwatch.GetTimestamp();
                            lanes[gpu].Runner.Run(into, n, outputs, 0, padTo: batch);
                            busy[gpu] += Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                            free.Add(into);
                            for (int i = 0; i < n; i++) top1[s + i] = ArgMax(outputs[0].Sample(i));
                        }
                    }
                    catch (Exception e) { errors.Enqueue(e); free.CompleteAdding(); while (ready.TryTake(out _)) { } }
                }) { IsBackground = true, Name = $"infer gpu{gpu}" });
            }
            foreach (var t in threads) t.Start();
            var clock = Stopwatch.StartNew();
            start.Set();
            foreach (var t in threads) t.Join();
            double wall = clock.Elapsed.TotalMilliseconds;
            if (!errors.IsEmpty) throw new AggregateException(errors);
            return new Throughput(precision.ToString(), gpus, count, batch, Math.Round(count / (wall / 1000), 1), Math.Round(wall, 1), fallbacks, Math.Round(busy.Average() / wall, 3)) { Top1 = top1 };
        }
    }

    /// <summary>
    /// The JPEGs of <paramref name="folder"/> (sorted), made there first where fewer than
    /// <paramref name="count"/>: 32 photo-like 500×375 images (a smooth random field plus grain,
    /// quality 90, as the anchors make them), repeated under the anchors' names (img00000.jpg...).
    /// </summary>
    internal static List<string> EnsureImages(string folder, int count)
    {
        Directory.CreateDirectory(folder);
        var existing = Directory.EnumerateFiles(folder, "*.jpg").OrderBy(f => f, StringComparer.Ordinal).ToList();
        if (existing.Count >= count) return existing.Take(count).ToList();
        NativeLibraries.Register();
        var rng = new Random(0);
        var bases = new List<byte[]>();
        for (int k = 0; k < 32; k++)
        {
            using var low = new SKBitmap(new SKImageInfo(16, 12, SKColorType.Rgba8888, SKAlphaType.Unpremul));
            for (int y = 0; y < 12; y++)
                for (int x = 0; x < 16; x++)
                    low.SetPixel(x, y, new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)));
            using var big = low.Resize(new SKImageInfo(500, 375, SKColorType.Rgba8888, SKAlphaType.Unpremul), new SKSamplingOptions(SKCubicResampler.CatmullRom));
            var pixels = big.Bytes; // RGBA, a copy
            for (int i = 0; i < pixels.Length; i += 4)
                for (int c = 0; c < 3; c++) pixels[i + c] = (byte)Math.Clamp(pixels[i + c] + rng.Next(-12, 12), 0, 255);
            System.Runtime.InteropServices.Marshal.Copy(pixels, 0, big.GetPixels(), pixels.Length);
            using var data = big.Encode(SKEncodedImageFormat.Jpeg, 90);
            bases.Add(data.ToArray());
        }
        for (int i = 0; i < count; i++)
        {
            var path = Path.Combine(folder, $"img{i:D5}.jpg");
            if (!File.Exists(path)) File.WriteAllBytes(path, bases[i % bases.Count]);
        }
        return Directory.EnumerateFiles(folder, "*.jpg").OrderBy(f => f, StringComparer.Ordinal).Take(count).ToList();
    }
}
