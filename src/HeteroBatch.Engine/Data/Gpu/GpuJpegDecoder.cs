using System.Buffers;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace HeteroBatch.Engine.Data.Gpu;

/// <summary>What became of one JPEG of a batch decoded on the GPU.</summary>
public enum GpuDecodeStatus
{
    /// <summary>Decoded by the batched decoder (the JPEG engines where the GPU has them) and resized into its slot.</summary>
    Decoded,
    /// <summary>Not something the batched decoder takes (progressive, CMYK...): decoded by nvJPEG's default backend instead, and resized.</summary>
    DecodedByFallback,
    /// <summary>Its header is not a JPEG's (a PNG, a truncated or foreign file): decode it on the CPU and <see cref="DeviceImageBatch.Upload"/> it.</summary>
    NotJpeg,
    /// <summary>nvJPEG or the resize failed on it: decode it on the CPU and <see cref="DeviceImageBatch.Upload"/> it.</summary>
    Failed,
}

/// <summary>How the decoded image is shrunk to the model's input.</summary>
public enum GpuResizeFilter
{
    /// <summary>NPP's supersampling (an area average, antialiased) when shrinking, bilinear when enlarging: closest to the CPU path's antialiased triangle filter.</summary>
    Antialiased,
    /// <summary>Bilinear without antialiasing (what torchvision's tensor resize with antialias=False does).</summary>
    Bilinear,
}

/// <summary>What a <see cref="GpuJpegDecoder"/> makes of each image.</summary>
public sealed record GpuDecodeSettings
{
    /// <summary>The model input's width and height (the crop).</summary>
    public int Width { get; init; } = 224;
    public int Height { get; init; } = 224;
    /// <summary>The geometry (resize of the shorter side, centre crop; or stretch), as on the CPU. Mean, std and channel order belong to the model's uint8 input prefix (Models/InputPrefix), not to the decoder: it writes RGB bytes.</summary>
    public ImagePreprocessing Preprocessing { get; init; } = ImagePreprocessing.ImageNet;
    /// <summary>The most images one <see cref="GpuJpegDecoder.Decode"/> call takes (a batch's capacity).</summary>
    public int MaxBatch { get; init; } = 256;
    /// <summary>Use the JPEG engines (nvJPEG's hardware backend) where the GPU has them.</summary>
    public bool UseHardware { get; init; } = true;
    /// <summary>Receives each step of a batch's decoding (for finding where a GPU stops answering); null for none.</summary>
    public Action<string>? Trace { get; init; }
    public GpuResizeFilter Filter { get; init; } = GpuResizeFilter.Antialiased;
    /// <summary>Resize a batch's images with one batched NPP call over whole-pixel source rectangles (<see cref="GpuJpegDecoder.SourceRegion"/>); false: one sub-pixel exact call an image.</summary>
    public bool BatchedResize { get; init; } = true;

    /// <summary>Settings for a model input, as the CPU path reads it (<see cref="ImageInput.Layout"/>): its height and width. Throws ImageInputUnsupported for inputs that are not images.</summary>
    public static GpuDecodeSettings ForInput(TensorSpec input, ImagePreprocessing preprocessing, int maxBatch)
    {
        var (channels, height, width, _) = ImageInput.Layout(input);
        if (channels != 3)
            throw new HeteroBatchException("ImageInputUnsupported", FailureKind.InvalidArgument,
                $"GPU decoding writes RGB images; the model's input '{input.Name}' has {channels} channel(s).", input.Name);
        return new GpuDecodeSettings { Width = width, Height = height, Preprocessing = preprocessing.Checked(), MaxBatch = maxBatch };
    }
}

/// <summary>
/// Decodes batches of JPEG files on one NVIDIA GPU with nvJPEG and resizes each straight into
/// the model's input size with NPP: the source region that torchvision's Resize + CenterCrop
/// keeps is mapped onto the destination with one sub-pixel affine resize, so the resized
/// intermediate image is never made. The result is a contiguous uint8 batch [N, H, W, 3] (RGB)
/// in device memory (<see cref="DeviceImageBatch"/>), ready for a model with a uint8 input prefix.
///
/// One decoder per GPU; its nvJPEG handles are thread-safe, each <see cref="DeviceImageBatch"/>
/// is used by one thread at a time. Several batches (each with its own stream) per decoder let the
/// decoding of the next batches overlap the inference of one. Dispose the batches before the decoder.
/// </summary>
public sealed unsafe class GpuJpegDecoder : IDisposable
{
    private readonly GpuNative _native;
    private IntPtr _batchedHandle;   // the hardware backend where present, else the default one
    private IntPtr _fallbackHandle;  // the default backend, for what the hardware does not take
    private bool _disposed;

    public int DeviceId { get; }
    public GpuDecodeSettings Settings { get; }
    /// <summary>True when batches go to the GPU's JPEG engines (nvJPEG's hardware backend).</summary>
    public bool UsesHardware { get; }

    /// <summary>
    /// Why GPU decoding cannot run on device <paramref name="deviceId"/> here (a library or entry
    /// point missing, no such CUDA device), or null where it can. Loads the libraries; starts nothing.
    /// </summary>
    public static string? WhyUnavailable(int deviceId = 0)
    {
        var native = GpuNative.TryLoad(out var why);
        if (native == null) return why;
        int count = native.DeviceCount();
        return deviceId < count ? null : count == 0 ? "the CUDA runtime sees no GPU" : $"the CUDA runtime sees {count} GPU(s), not device {deviceId}";
    }

    /// <summary>Opens nvJPEG on GPU <paramref name="deviceId"/>. Throws GpuDecodeUnavailable (with the reason) where it cannot run, GpuDecodeFailed where nvJPEG fails to start.</summary>
    public GpuJpegDecoder(int deviceId, GpuDecodeSettings settings)
    {
        if (settings.Width <= 0 || settings.Height <= 0 || settings.MaxBatch <= 0)
            throw new HeteroBatchException("GpuDecodeInvalid", FailureKind.InvalidArgument,
                $"GPU decoding needs a positive size and batch (got {settings.Width}×{settings.Height}, batch {settings.MaxBatch}).");
        settings.Preprocessing.Checked();
        _native = GpuNative.TryLoad(out var why)
            ?? throw new HeteroBatchException("GpuDecodeUnavailable", FailureKind.ResourceUnavailable, $"GPU decoding is not available here: {why}.");
        if (deviceId < 0 || deviceId >= _native.DeviceCount())
            throw new HeteroBatchException("GpuDecodeUnavailable", FailureKind.ResourceUnavailable, $"GPU decoding is not available here: {WhyUnavailable(deviceId) ?? $"no CUDA device {deviceId}"}.");
        DeviceId = deviceId;
        Settings = settings;
        try
        {
            _native.Check(_native.SetDevice(deviceId), "cudaSetDevice");
            IntPtr handle;
            if (settings.UseHardware && _native.NvjpegCreateEx(GpuNative.BackendHardware, IntPtr.Zero, IntPtr.Zero, 0, &handle) == 0)
            {
                _batchedHandle = handle;
                UsesHardware = true;
            }
            GpuNative.CheckJpeg(_native.NvjpegCreateEx(GpuNative.BackendDefault, IntPtr.Zero, IntPtr.Zero, 0, &handle), "nvjpegCreateEx (default backend)");
            _fallbackHandle = handle;
            if (!UsesHardware) _batchedHandle = _fallbackHandle;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>A device batch of <see cref="GpuDecodeSettings.MaxBatch"/> images with its own stream and decoding state.</summary>
    public DeviceImageBatch CreateBatch()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new DeviceImageBatch(_native, this, _batchedHandle, _fallbackHandle);
    }

    /// <summary>
    /// Queues the decoding of <paramref name="jpegs"/> into slots 0.. of <paramref name="into"/> on
    /// its stream and returns each sample's status; call <see cref="DeviceImageBatch.Synchronize"/>
    /// before reading the pixels (or hand them to ONNX Runtime). Samples that are not JPEGs or fail
    /// are reported, never thrown: the caller decodes those on the CPU and uploads them. The bytes
    /// must stay unchanged until the batch is synchronised (they are pinned until then).
    /// Throws GpuDecodeInvalid for more images than the batch holds, GpuDecodeFailed where the
    /// GPU itself fails (out of memory, a lost device).
    /// </summary>
    public GpuDecodeStatus[] Decode(IReadOnlyList<ReadOnlyMemory<byte>> jpegs, DeviceImageBatch into)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (into.Owner != this) throw new ArgumentException("the batch belongs to another decoder", nameof(into));
        if (jpegs.Count > into.Capacity)
            throw new HeteroBatchException("GpuDecodeInvalid", FailureKind.InvalidArgument, $"GPU decoding: {jpegs.Count} images for a batch of {into.Capacity}.");
        return into.DecodeInto(jpegs);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_fallbackHandle != IntPtr.Zero || _batchedHandle != IntPtr.Zero) _native.SetDevice(DeviceId);
        if (_batchedHandle != IntPtr.Zero && _batchedHandle != _fallbackHandle) _native.NvjpegDestroy(_batchedHandle);
        if (_fallbackHandle != IntPtr.Zero) _native.NvjpegDestroy(_fallbackHandle);
        _batchedHandle = _fallbackHandle = IntPtr.Zero;
    }

    internal int Width => Settings.Width;
    internal int Height => Settings.Height;

    /// <summary>
    /// The affine map that NPP's square-pixel resize applies to a <paramref name="sourceWidth"/>×<paramref name="sourceHeight"/>
    /// image so that the destination (the settings' width × height) is exactly the crop of the
    /// resized image that <see cref="ImagePreprocessing.Geometry"/> describes:
    /// destination = source × factor + shift, per axis.
    /// </summary>
    public static (double XFactor, double YFactor, double XShift, double YShift) SourceMapping(int sourceWidth, int sourceHeight, GpuDecodeSettings settings)
    {
        var g = settings.Preprocessing.Geometry(sourceWidth, sourceHeight, settings.Width, settings.Height);
        return ((double)g.Width / sourceWidth, (double)g.Height / sourceHeight, -g.Left, -g.Top);
    }

    /// <summary>
    /// The source rectangle that <see cref="SourceMapping"/> maps onto the destination, each edge rounded to the
    /// nearest whole pixel and kept inside the image (at least one pixel wide): what NPP's batched resize, which maps
    /// whole-pixel rectangles, takes. Each edge lies within half a source pixel of the exact one, except where the
    /// region is widened to the one pixel it keeps at least (an image a pixel or two wide).
    /// </summary>
    public static (int X, int Y, int Width, int Height) SourceRegion(int sourceWidth, int sourceHeight, GpuDecodeSettings settings)
    {
        var (xFactor, yFactor, xShift, yShift) = SourceMapping(sourceWidth, sourceHeight, settings);
        static (int Start, int Length) Edges(double start, double end, int size)
        {
            int from = (int)Math.Clamp(Math.Round(start, MidpointRounding.AwayFromZero), 0, size - 1);
            int to = (int)Math.Clamp(Math.Round(end, MidpointRounding.AwayFromZero), from + 1, size);
            return (from, to - from);
        }
        var (x, width) = Edges(-xShift / xFactor, (settings.Width - xShift) / xFactor, sourceWidth);
        var (y, height) = Edges(-yShift / yFactor, (settings.Height - yShift) / yFactor, sourceHeight);
        return (x, y, width, height);
    }
}

/// <summary>
/// A uint8 batch [Capacity, Height, Width, 3] in one GPU's memory, with the CUDA stream and nvJPEG
/// state that fill it. Used by one thread at a time; disposed before its decoder.
/// </summary>
public sealed unsafe class DeviceImageBatch : IDisposable
{
    private const int Align = 256;
    private readonly GpuNative _native;
    private readonly IntPtr _batchedHandle, _fallbackHandle;
    private IntPtr _stream, _pixels, _staging, _batchedState, _fallbackState, _jpegStream;
    private long _stagingBytes;
    private int _initializedBatch = -1;
    private NppStreamContext _npp;
    private readonly List<MemoryHandle> _pins = new();
    private bool _disposed;
    // a batched resize's descriptors (sources, destinations, rectangles; Capacity of each), written on the host, copied to the device
    private IntPtr _resizeHost, _resizeDevice;
    private bool _batchedResizeRefused; // NPP refused a batched call once: each image alone from then on

    internal GpuJpegDecoder Owner { get; }
    public int DeviceId => Owner.DeviceId;
    public int Capacity { get; }
    public int Width { get; }
    public int Height { get; }
    /// <summary>Bytes of one sample (Height × Width × 3).</summary>
    public long SampleBytes => (long)Width * Height * 3;
    /// <summary>The device address of sample 0; samples follow each other without gaps.</summary>
    public IntPtr Pointer => _pixels;
    /// <summary>The CUDA stream the batch is decoded on.</summary>
    public IntPtr Stream => _stream;
    /// <summary>The shape of <paramref name="count"/> samples: [count, Height, Width, 3].</summary>
    public long[] Shape(int count) => new long[] { count, Height, Width, 3 };
    /// <summary>The last decode's host time: parsing headers, handing the images to nvJPEG (which decodes the batched ones until their bytes are on the GPU), queueing the resizes.</summary>
    public (double ParseMs, double DecodeMs, double ResizeMs) LastTimes { get; private set; }
    /// <summary>How many samples of the last decode went through NPP's bilinear filter because supersampling refused them (enlargements, or an NPP that lacks it).</summary>
    public int BilinearFallbacks { get; private set; }
    /// <summary>How many samples of the last decode were resized by one batched call (the rest one call each).</summary>
    public int ResizedTogether { get; private set; }

    internal DeviceImageBatch(GpuNative native, GpuJpegDecoder owner, IntPtr batchedHandle, IntPtr fallbackHandle)
    {
        _native = native;
        Owner = owner;
        _batchedHandle = batchedHandle;
        _fallbackHandle = fallbackHandle;
        Capacity = owner.Settings.MaxBatch;
        Width = owner.Width;
        Height = owner.Height;
        try
        {
            native.Check(native.SetDevice(owner.DeviceId), "cudaSetDevice");
            IntPtr p;
            native.Check(native.StreamCreateWithFlags(&p, GpuNative.CudaStreamNonBlocking), "cudaStreamCreateWithFlags");
            _stream = p;
            native.Check(native.Malloc(&p, (nuint)(SampleBytes * Capacity)), $"cudaMalloc of {SampleBytes * Capacity} bytes");
            _pixels = p;
            GpuNative.CheckJpeg(native.NvjpegJpegStateCreate(batchedHandle, &p), "nvjpegJpegStateCreate");
            _batchedState = p;
            GpuNative.CheckJpeg(native.NvjpegJpegStateCreate(fallbackHandle, &p), "nvjpegJpegStateCreate");
            _fallbackState = p;
            GpuNative.CheckJpeg(native.NvjpegJpegStreamCreate(batchedHandle, &p), "nvjpegJpegStreamCreate");
            _jpegStream = p;
            _npp = native.NppContext(owner.DeviceId, _stream);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private readonly record struct Item(int Index, int Width, int Height, long Offset);

    internal GpuDecodeStatus[] DecodeInto(IReadOnlyList<ReadOnlyMemory<byte>> jpegs)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _native.Check(_native.SetDevice(DeviceId), "cudaSetDevice");
        var trace = Owner.Settings.Trace;
        trace?.Invoke($"gpu{DeviceId}: synchronize before decoding {jpegs.Count}");
        Synchronize(); // the staging area and the pins of the previous decode are free again
        trace?.Invoke($"gpu{DeviceId}: parse headers");
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        int n = jpegs.Count;
        var status = new GpuDecodeStatus[n];
        var pointers = new IntPtr[n];
        var batched = new List<Item>(n);
        var fallback = new List<Item>();
        long offset = 0;
        for (int i = 0; i < n; i++)
        {
            var pin = jpegs[i].Pin();
            _pins.Add(pin);
            pointers[i] = (IntPtr)pin.Pointer;
            uint w = 0, h = 0, components = 0;
            if (jpegs[i].Length < 4
                || _native.NvjpegJpegStreamParseHeader(_batchedHandle, (byte*)pointers[i], (nuint)jpegs[i].Length, _jpegStream) != 0
                || _native.NvjpegJpegStreamGetFrameDimensions(_jpegStream, &w, &h) != 0
                || _native.NvjpegJpegStreamGetComponentsNum(_jpegStream, &components) != 0
                || w == 0 || h == 0 || (long)w * h > 1L << 28)
            {
                status[i] = GpuDecodeStatus.NotJpeg;
                continue;
            }
            var item = new Item(i, (int)w, (int)h, offset);
            offset += ((long)w * 3 * h + Align - 1) / Align * Align;
            int unsupported = 0;
            bool hardwareTakes = components is 1 or 3
                && (!Owner.UsesHardware || (_native.NvjpegDecodeBatchedSupported(_batchedHandle, _jpegStream, &unsupported) == 0 && unsupported == 0));
            (hardwareTakes ? batched : fallback).Add(item);
        }
        trace?.Invoke($"gpu{DeviceId}: {batched.Count} batched, {fallback.Count} alone; staging {offset} bytes");
        EnsureStaging(offset);
        trace?.Invoke($"gpu{DeviceId}: decode batched");
        long t1 = System.Diagnostics.Stopwatch.GetTimestamp();

        if (batched.Count > 0 && !DecodeBatched(batched, pointers, jpegs))
        {
            fallback.AddRange(batched); // one bad image fails the whole batched call: decode each alone
            batched.Clear();
        }
        foreach (var item in batched) status[item.Index] = GpuDecodeStatus.Decoded;
        trace?.Invoke($"gpu{DeviceId}: decode {fallback.Count} alone");
        foreach (var item in fallback)
        {
            var image = Destination(item);
            int code = _native.NvjpegDecode(_fallbackHandle, _fallbackState, (byte*)pointers[item.Index], (nuint)jpegs[item.Index].Length, GpuNative.OutputRgbi, &image, _stream);
            status[item.Index] = code == 0 ? GpuDecodeStatus.DecodedByFallback : GpuDecodeStatus.Failed;
            if (code != 0) _native.GetLastError();
        }

        BilinearFallbacks = 0;
        ResizedTogether = 0;
        trace?.Invoke($"gpu{DeviceId}: resize");
        long t2 = System.Diagnostics.Stopwatch.GetTimestamp();
        var decoded = batched.Concat(fallback).Where(item => status[item.Index] is GpuDecodeStatus.Decoded or GpuDecodeStatus.DecodedByFallback).ToList();
        var alone = ResizeTogether(decoded);
        foreach (var item in alone)
            if (!Resize(item)) status[item.Index] = GpuDecodeStatus.Failed;
        long t3 = System.Diagnostics.Stopwatch.GetTimestamp();
        static double Ms(long from, long to) => (to - from) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;
        LastTimes = (Ms(t0, t1), Ms(t1, t2), Ms(t2, t3));
        return status;
    }

    private NvjpegImage Destination(Item item)
    {
        var image = new NvjpegImage();
        image.Channel[0] = (long)(_staging + (nint)item.Offset);
        image.Pitch[0] = (ulong)(item.Width * 3);
        return image;
    }

    private bool DecodeBatched(List<Item> items, IntPtr[] pointers, IReadOnlyList<ReadOnlyMemory<byte>> jpegs)
    {
        if (_initializedBatch != items.Count)
        {
            Owner.Settings.Trace?.Invoke($"gpu{DeviceId}: nvjpegDecodeBatchedInitialize({items.Count})");
            if (_native.NvjpegDecodeBatchedInitialize(_batchedHandle, _batchedState, items.Count, 1, GpuNative.OutputRgbi) != 0) return false;
            _initializedBatch = items.Count;
        }
        var data = new IntPtr[items.Count];
        var lengths = new nuint[items.Count];
        var images = new NvjpegImage[items.Count];
        for (int k = 0; k < items.Count; k++)
        {
            data[k] = pointers[items[k].Index];
            lengths[k] = (nuint)jpegs[items[k].Index].Length;
            images[k] = Destination(items[k]);
        }
        fixed (IntPtr* d = data)
        fixed (nuint* l = lengths)
        fixed (NvjpegImage* im = images)
        {
            int code = _native.NvjpegDecodeBatched(_batchedHandle, _batchedState, (byte**)d, l, im, _stream);
            if (code == 0) return true;
            _native.GetLastError();
            _initializedBatch = -1;
            return false;
        }
    }

    /// <summary>
    /// Resizes, with one batched NPP call, the decoded images of <paramref name="items"/> that it can take (all with the
    /// bilinear filter; only shrinking ones with supersampling, which NPP does not enlarge with) from the staging area
    /// into their slots, each from its whole-pixel source rectangle; returns the items left to resize one at a time
    /// (all of them where batching is off, this NPP lacks the call or refused it once).
    /// </summary>
    private List<Item> ResizeTogether(List<Item> items)
    {
        if (!Owner.Settings.BatchedResize || _batchedResizeRefused || _native.ResizeBatch8uC3 == null || items.Count < 2) return items;
        var settings = Owner.Settings;
        bool bilinear = settings.Filter == GpuResizeFilter.Bilinear;
        var together = new List<(Item Item, (int X, int Y, int Width, int Height) Region)>(items.Count);
        var alone = new List<Item>();
        foreach (var item in items)
        {
            var region = GpuJpegDecoder.SourceRegion(item.Width, item.Height, settings);
            bool takes = region.Width >= 2 && region.Height >= 2 && (bilinear || (region.Width >= Width && region.Height >= Height));
            if (takes) together.Add((item, region)); else alone.Add(item);
        }
        if (together.Count < 2) return items;
        int descriptor = sizeof(NppiImageDescriptor), roi = sizeof(NppiResizeBatchRoi);
        long bytes = (long)Capacity * (2 * descriptor + roi);
        if (_resizeHost == IntPtr.Zero || _resizeDevice == IntPtr.Zero)
        {
            IntPtr host = IntPtr.Zero, device = IntPtr.Zero;
            if (_native.MallocHost(&host, (nuint)bytes) != 0 || _native.Malloc(&device, (nuint)bytes) != 0)
            {
                // no room for the descriptors: each image alone (it needs none), from now on
                _native.GetLastError();
                if (host != IntPtr.Zero) _native.FreeHost(host);
                if (device != IntPtr.Zero) _native.Free(device);
                return Refuse(items, "no memory for the batched resize's descriptors");
            }
            (_resizeHost, _resizeDevice) = (host, device);
        }
        // the host copy is free again: the batch synchronised before this decode
        var sources = (NppiImageDescriptor*)_resizeHost;
        var targets = (NppiImageDescriptor*)(_resizeHost + Capacity * descriptor);
        var rectangles = (NppiResizeBatchRoi*)(_resizeHost + 2 * Capacity * descriptor);
        for (int k = 0; k < together.Count; k++)
        {
            var (item, (x, y, w, h)) = together[k];
            sources[k] = new NppiImageDescriptor { Data = _staging + (nint)item.Offset, Step = item.Width * 3, Size = new NppiSize { Width = item.Width, Height = item.Height } };
            targets[k] = new NppiImageDescriptor { Data = _pixels + (nint)(SampleBytes * item.Index), Step = Width * 3, Size = new NppiSize { Width = Width, Height = Height } };
            rectangles[k] = new NppiResizeBatchRoi
            {
                Source = new NppiRect { X = x, Y = y, Width = w, Height = h },
                Destination = new NppiRect { Width = Width, Height = Height },
            };
        }
        if (_native.MemcpyAsync(_resizeDevice, _resizeHost, (nuint)bytes, GpuNative.CudaMemcpyHostToDevice, _stream) != 0)
        {
            _native.GetLastError();
            return Refuse(items, "the descriptors' copy failed");
        }
        int filter = bilinear ? GpuNative.NppiInterLinear : GpuNative.NppiInterSuper;
        int code = _native.ResizeBatch8uC3(Width, Height, _resizeDevice, _resizeDevice + Capacity * descriptor, _resizeDevice + 2 * Capacity * descriptor,
            (uint)together.Count, filter, _npp);
        if (code < 0)
        {
            _native.GetLastError();
            return Refuse(items, $"NPP refused it ({code})");
        }
        ResizedTogether = together.Count;
        return alone;
    }

    /// <summary>Gives up the batched resize for good (this batch resizes each image alone from now on) and returns every item to resize alone.</summary>
    private List<Item> Refuse(List<Item> items, string why)
    {
        Owner.Settings.Trace?.Invoke($"gpu{DeviceId}: batched resize off: {why}; resizing each image alone from now on");
        _batchedResizeRefused = true;
        return items;
    }

    /// <summary>Resizes the decoded image of <paramref name="item"/> from the staging area into its slot: the crop's source region mapped onto the whole destination.</summary>
    private bool Resize(Item item)
    {
        // destination = source × factor + shift: the source scaled to the resized size, moved so that the crop starts at 0
        var (xFactor, yFactor, xShift, yShift) = GpuJpegDecoder.SourceMapping(item.Width, item.Height, Owner.Settings);
        var source = (byte*)(_staging + (nint)item.Offset);
        var target = (byte*)(_pixels + (nint)(SampleBytes * item.Index));
        var size = new NppiSize { Width = item.Width, Height = item.Height };
        var sourceRoi = new NppiRect { Width = item.Width, Height = item.Height };
        var targetRoi = new NppiRect { Width = Width, Height = Height };
        bool shrink = xFactor <= 1 && yFactor <= 1;
        int filter = Owner.Settings.Filter == GpuResizeFilter.Antialiased && shrink ? GpuNative.NppiInterSuper : GpuNative.NppiInterLinear;
        int code = _native.ResizeSqrPixel8uC3(source, size, item.Width * 3, sourceRoi, target, Width * 3, targetRoi, xFactor, yFactor, xShift, yShift, filter, _npp);
        if (code < 0 && filter == GpuNative.NppiInterSuper)
        {
            BilinearFallbacks++;
            code = _native.ResizeSqrPixel8uC3(source, size, item.Width * 3, sourceRoi, target, Width * 3, targetRoi, xFactor, yFactor, xShift, yShift, GpuNative.NppiInterLinear, _npp);
        }
        else if (filter == GpuNative.NppiInterLinear && Owner.Settings.Filter == GpuResizeFilter.Antialiased) BilinearFallbacks++;
        if (code < 0) _native.GetLastError();
        return code >= 0; // NPP's positive codes are warnings
    }

    private void EnsureStaging(long bytes)
    {
        if (bytes <= _stagingBytes) return;
        if (_staging != IntPtr.Zero) { _native.Free(_staging); _staging = IntPtr.Zero; _stagingBytes = 0; }
        long size = Math.Max(bytes + bytes / 4, 1L << 20);
        IntPtr p;
        _native.Check(_native.Malloc(&p, (nuint)size), $"cudaMalloc of {size} bytes for decoding");
        _staging = p;
        _stagingBytes = size;
    }

    /// <summary>Waits for what is queued on the batch's stream, then lets go of the input bytes. Throws GpuDecodeFailed where the GPU reports an error.</summary>
    public void Synchronize()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            Owner.Settings.Trace?.Invoke($"gpu{DeviceId}: cudaStreamSynchronize");
            _native.Check(_native.StreamSynchronize(_stream), "cudaStreamSynchronize");
            Owner.Settings.Trace?.Invoke($"gpu{DeviceId}: synchronized");
        }
        finally
        {
            foreach (var pin in _pins) pin.Dispose();
            _pins.Clear();
        }
    }

    /// <summary>Writes one sample's pixels (Height × Width × 3 RGB bytes, decoded on the CPU) into slot <paramref name="index"/>, after what is queued on the stream. Returns once copied.</summary>
    public void Upload(int index, ReadOnlySpan<byte> rgb)
    {
        QueueUpload(index, rgb);
        _native.Check(_native.StreamSynchronize(_stream), "cudaStreamSynchronize");
    }

    /// <summary>
    /// Queues a copy of one sample's pixels (Height × Width × 3 RGB bytes, decoded on the CPU) into slot <paramref name="index"/>,
    /// after what is queued on the stream, and returns: the host memory must stay as it is until the batch is synchronised
    /// (page-locked memory is read by the GPU then; other memory is staged before this returns).
    /// </summary>
    public void QueueUpload(int index, ReadOnlySpan<byte> rgb)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Capacity);
        if (rgb.Length != SampleBytes) throw new ArgumentException($"a sample is {SampleBytes} bytes, not {rgb.Length}", nameof(rgb));
        _native.Check(_native.SetDevice(DeviceId), "cudaSetDevice");
        fixed (byte* p = rgb)
            _native.Check(_native.MemcpyAsync(_pixels + (nint)(SampleBytes * index), (IntPtr)p, (nuint)rgb.Length, GpuNative.CudaMemcpyHostToDevice, _stream), "cudaMemcpyAsync");
    }

    /// <summary>Copies samples [0, count) to the host (for checks): count × Height × Width × 3 bytes.</summary>
    public byte[] Download(int count)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var bytes = new byte[SampleBytes * count];
        _native.Check(_native.SetDevice(DeviceId), "cudaSetDevice");
        fixed (byte* p = bytes)
        {
            _native.Check(_native.MemcpyAsync((IntPtr)p, _pixels, (nuint)bytes.Length, 2, _stream), "cudaMemcpyAsync");
            _native.Check(_native.StreamSynchronize(_stream), "cudaStreamSynchronize");
        }
        return bytes;
    }

    /// <summary>The element type the batch holds (uint8), for binding it as a model input.</summary>
    public static TensorElementType ElementType => TensorElementType.UInt8;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _native.SetDevice(Owner.DeviceId); // frees and destroys act on the batch's own GPU
        if (_stream != IntPtr.Zero) _native.StreamSynchronize(_stream);
        foreach (var pin in _pins) pin.Dispose();
        _pins.Clear();
        if (_jpegStream != IntPtr.Zero) _native.NvjpegJpegStreamDestroy(_jpegStream);
        if (_batchedState != IntPtr.Zero) _native.NvjpegJpegStateDestroy(_batchedState);
        if (_fallbackState != IntPtr.Zero) _native.NvjpegJpegStateDestroy(_fallbackState);
        if (_staging != IntPtr.Zero) _native.Free(_staging);
        if (_resizeDevice != IntPtr.Zero) _native.Free(_resizeDevice);
        if (_resizeHost != IntPtr.Zero) _native.FreeHost(_resizeHost);
        if (_pixels != IntPtr.Zero) _native.Free(_pixels);
        if (_stream != IntPtr.Zero) _native.StreamDestroy(_stream);
        _jpegStream = _batchedState = _fallbackState = _staging = _pixels = _stream = _resizeDevice = _resizeHost = IntPtr.Zero;
        _native.GetLastError();
    }
}
