using HeteroBatch.Engine.Runtime;
using SkiaSharp;

namespace HeteroBatch.Engine.Data;

/// <summary>
/// One decoding thread's image preprocessing: decodes only the rows and columns the resize window
/// reads (libjpeg-turbo skips rows and crops columns, through SkiaSharp's scanline decoder), runs
/// each decoded row through the horizontal pass at once, then the vertical pass writes the
/// tensor's sample directly (normalised floats, channels first) or the resized pixels for the
/// other layouts. Pixels equal <see cref="ImageInput.LoadReference"/>'s value for value; in
/// <see cref="DecodeMode.Fast"/> a large JPEG is decoded at 1/2, 1/4 or 1/8 scale first.
/// </summary>
/// <remarks>
/// Not thread-safe: one instance a thread (<see cref="ForThisThread"/>). It keeps its scratch
/// buffers and the filter taps of the last few sizes between samples, so a folder of photos of
/// a few sizes allocates no pixel buffers and computes no taps after its first images; buffers
/// above <see cref="KeptBytes"/> are dropped after the image that needed them.
/// </remarks>
internal sealed unsafe class ImageDecoder
{
    [ThreadStatic] private static ImageDecoder? _current;

    /// <summary>This thread's decoder (created on first use, kept with the thread).</summary>
    public static ImageDecoder ForThisThread => _current ??= new ImageDecoder();

    /// <summary>Scratch buffers up to this size are kept for the next image.</summary>
    public const int KeptBytes = 16 << 20;
    private const int ChunkBytes = 256 << 10;
    private const int CropMargin = 16;

    /// <summary>False: always decode the whole image at full size (the path for codecs that cannot decode a window; tests use it).</summary>
    internal bool Streaming { get; init; } = true;
    /// <summary>False: never decode through TurboJPEG, only SkiaSharp (tests compare the two).</summary>
    internal bool UseTurboJpeg { get; init; } = true;
    /// <summary>What a large image takes its pixels from before it is decoded: the process's, unless a test gives its own.</summary>
    internal DecodeBudget Budget { get; init; } = DecodeBudget.Shared;
    /// <summary>The size the last image was decoded at (tests read it).</summary>
    internal (int Width, int Height) LastDecoded { get; private set; }

    private nint _turbo; // this thread's TurboJPEG decompressor, made on first use, destroyed with the decoder

    private readonly AxisTaps?[] _taps = new AxisTaps?[8]; // the last sizes seen, replaced round robin
    private int _nextTaps;
    private byte[] _rows = Array.Empty<byte>(); // decoded RGBA scanlines, a chunk at a time
    private byte[] _mid = Array.Empty<byte>();  // the horizontal pass: three planes of the window's width
    private byte[] _out = Array.Empty<byte>();  // the resized window as three planes, for layouts other than float CHW RGB

    /// <summary>Decodes and preprocesses one image's bytes into sample <paramref name="index"/> of <paramref name="batch"/>.</summary>
    public void Load(ReadOnlySpan<byte> bytes, string path, TensorBatch batch, int index, ImagePreprocessing preprocessing)
    {
        var (channels, height, width, channelsFirst) = ImageInput.Layout(new TensorSpec(batch.Name, batch.ElementType, batch.SampleShape));
        byte[] mid;
        AxisTaps vertical;
        if (UseTurboJpeg && TryTurboJpeg(bytes, path, preprocessing, width, height, out mid, out vertical)) { }
        else (mid, vertical) = DecodeWithSkia(bytes, path, preprocessing, width, height);

        int plane = width * height;
        bool direct = batch.Data is float[] && channelsFirst && channels == 3;
        if (!direct && _out.Length < 3 * plane) _out = new byte[3 * plane];
        int rows = vertical.End - vertical.Min;
        fixed (byte* m = mid)
        fixed (byte* o = _out)
        {
            if (direct)
            {
                var (scale, offset) = Normalisation(preprocessing);
                bool bgr = preprocessing.ChannelOrder == ChannelOrder.Bgr;
                fixed (float* f = (float[])batch.Data)
                {
                    float* sample = f + (long)index * 3 * plane;
                    for (int c = 0; c < 3; c++)
                    {
                        int channel = bgr ? 2 - c : c;
                        for (int y = 0; y < height; y++)
                            VectorResampler.Vertical(m + (long)c * rows * width, width, vertical.Min, vertical, y, null,
                                sample + (long)channel * plane + (long)y * width, scale[channel], offset[channel]);
                    }
                }
            }
            else
            {
                for (int c = 0; c < 3; c++)
                    for (int y = 0; y < height; y++)
                        VectorResampler.Vertical(m + (long)c * rows * width, width, vertical.Min, vertical, y,
                            o + (long)c * plane + (long)y * width, null, 0, 0);
                ImageInput.WritePlanes(_out.AsSpan(0, plane), _out.AsSpan(plane, plane), _out.AsSpan(2 * plane, plane),
                    channels, channelsFirst, preprocessing, batch, index);
            }
        }
        if (_mid.Length > KeptBytes) _mid = Array.Empty<byte>();
        if (_rows.Length > KeptBytes) _rows = Array.Empty<byte>();
        if (_out.Length > KeptBytes) _out = Array.Empty<byte>();
    }

    /// <summary>The window through SkiaSharp: its scanline decoder where it can, else the whole image.</summary>
    private (byte[] Mid, AxisTaps Vertical) DecodeWithSkia(ReadOnlySpan<byte> bytes, string path, ImagePreprocessing preprocessing, int width, int height)
    {
        NativeLibraries.Register();
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data)
            ?? throw new HeteroBatchException("ImageUnreadable", FailureKind.InvalidData, $"{path} could not be decoded as a JPEG or PNG image.", path);
        int sourceWidth = codec.Info.Width, sourceHeight = codec.Info.Height;
        ImageInput.CheckSize(sourceWidth, sourceHeight, path);
        // the source's pixels, whatever the scale: a progressive JPEG's coefficients are held whole even when scaled
        using var lease = Budget.Take((long)sourceWidth * sourceHeight);
        var g = preprocessing.Geometry(sourceWidth, sourceHeight, width, height);
        var decoded = codec.EncodedFormat == SKEncodedImageFormat.Jpeg
            ? preprocessing.DecodeSize(sourceWidth, sourceHeight, g.Width, g.Height)
            : (Width: sourceWidth, Height: sourceHeight, Denominator: 1);

        byte[] mid;
        AxisTaps vertical;
        LastDecoded = (sourceWidth, sourceHeight);
        if (!Streaming) (mid, vertical) = WholeImage(bytes, path, g, width, height);
        else if (TryStream(codec, path, decoded.Width, decoded.Height, g, width, height, out mid, out vertical)) LastDecoded = (decoded.Width, decoded.Height);
        else if (decoded.Denominator != 1 && TryStream(codec, path, sourceWidth, sourceHeight, g, width, height, out mid, out vertical)) { }
        else (mid, vertical) = WholeImage(bytes, path, g, width, height);

        return (mid, vertical);
    }

    /// <summary>
    /// A JPEG through TurboJPEG (SIMD), whole at the decode size (full, or reduced in fast mode) into this thread's
    /// buffer, then the horizontal pass over the window's rows. False (nothing written) where the library is absent,
    /// the file is not a JPEG it reads to RGB, the decoded image would be above <see cref="KeptBytes"/> (SkiaSharp's
    /// scanline decoder then keeps memory to the window), or it reports any error or warning.
    /// </summary>
    private bool TryTurboJpeg(ReadOnlySpan<byte> bytes, string path, ImagePreprocessing preprocessing, int width, int height, out byte[] mid, out AxisTaps vertical)
    {
        mid = _mid;
        vertical = null!;
        if (bytes.Length < 3 || bytes[0] != 0xFF || bytes[1] != 0xD8 || !TurboJpeg.IsAvailable) return false;
        if (_turbo == 0) _turbo = TurboJpeg.Create();
        if (!TurboJpeg.TryHeader(_turbo, bytes, out int sourceWidth, out int sourceHeight)) return false;
        ImageInput.CheckSize(sourceWidth, sourceHeight, path);
        var g = preprocessing.Geometry(sourceWidth, sourceHeight, width, height);
        var (w, h, _) = preprocessing.DecodeSize(sourceWidth, sourceHeight, g.Width, g.Height);
        long size = (long)w * h * 4;
        if (size > KeptBytes) return false;
        using var lease = Budget.Take((long)sourceWidth * sourceHeight);
        LastDecoded = (w, h);
        if (_rows.Length < size) _rows = new byte[size];
        fixed (byte* pixels = _rows)
        {
            if (!TurboJpeg.TryDecode(_turbo, bytes, pixels, w, h, w * 4)) return false;
            var horizontal = Taps(w, g.Width, g.Left, width);
            vertical = Taps(h, g.Height, g.Top, height);
            int rows = vertical.End - vertical.Min;
            mid = Mid(rows, width);
            fixed (byte* m = mid)
            {
                byte* r = m, gp = m + (long)rows * width, b = m + 2L * rows * width;
                for (int y = 0; y < rows; y++)
                {
                    long at = (long)y * width;
                    VectorResampler.Horizontal(pixels + (long)(vertical.Min + y) * w * 4, 0, horizontal, r + at, gp + at, b + at);
                }
            }
        }
        return true;
    }

    ~ImageDecoder() => TurboJpeg.Destroy(_turbo);

    private ImagePreprocessing? _normalised;
    private readonly float[] _scale = new float[3], _offset = new float[3];

    private (float[] Scale, float[] Offset) Normalisation(ImagePreprocessing p)
    {
        if (ReferenceEquals(p, _normalised)) return (_scale, _offset);
        // per output channel: value = byte * scale + offset = (byte / 255 - mean) / std, as ImageInput's writer computes it
        for (int c = 0; c < 3; c++)
        {
            float mean = p.Mean[Math.Min(c, p.Mean.Length - 1)], std = p.Std[Math.Min(c, p.Std.Length - 1)];
            _scale[c] = 1f / 255f / std;
            _offset[c] = -mean / std;
        }
        _normalised = p;
        return (_scale, _offset);
    }

    private AxisTaps Taps(int inSize, int outSize, int outStart, int outCount)
    {
        foreach (var t in _taps)
            if (t != null && t.Matches(inSize, outSize, outStart, outCount)) return t;
        var made = new AxisTaps(inSize, outSize, outStart, outCount);
        _taps[_nextTaps] = made;
        _nextTaps = (_nextTaps + 1) % _taps.Length;
        return made;
    }

    private byte[] Mid(int rows, int width)
    {
        int n = checked(3 * rows * width);
        if (_mid.Length < n) _mid = new byte[n];
        return _mid;
    }

    /// <summary>
    /// Decodes the window's rows (and, for JPEG, only its columns) at <paramref name="decodeWidth"/>×<paramref name="decodeHeight"/>
    /// with the scanline decoder, each chunk of rows straight through the horizontal pass. False where the codec
    /// cannot decode that way (another scale, row order or format); nothing is written then. Throws ImageUnreadable where
    /// the file ends before the image's last row.
    /// </summary>
    private bool TryStream(SKCodec codec, string path, int decodeWidth, int decodeHeight, (int Width, int Height, int Left, int Top) g,
        int width, int height, out byte[] mid, out AxisTaps vertical)
    {
        mid = _mid;
        var horizontal = Taps(decodeWidth, g.Width, g.Left, width);
        vertical = Taps(decodeHeight, g.Height, g.Top, height);
        var info = new SKImageInfo(decodeWidth, decodeHeight, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        // libjpeg-turbo crops whole blocks and upsamples chroma at the cut's edges from the edge alone; a margin
        // of one block (16 pixels, 4:2:0) each side keeps the window's columns those of a whole-row decode
        int column0 = Math.Max(0, horizontal.Min - CropMargin), columnEnd = Math.Min(decodeWidth, horizontal.End + CropMargin);
        int columns = columnEnd - column0;
        var result = columns < decodeWidth
            ? codec.StartScanlineDecode(info, new SKCodecOptions(new SKRectI(column0, 0, columnEnd, decodeHeight)))
            : SKCodecResult.Unimplemented;
        if (result != SKCodecResult.Success)
        {
            column0 = 0;
            columns = decodeWidth;
            result = codec.StartScanlineDecode(info);
        }
        if (result != SKCodecResult.Success || codec.ScanlineOrder != SKCodecScanlineOrder.TopDown) return false;

        int rows = vertical.End - vertical.Min;
        mid = Mid(rows, width);
        int rowBytes = columns * 4;
        int chunk = Math.Clamp(ChunkBytes / rowBytes, 1, rows);
        if (_rows.Length < chunk * rowBytes) _rows = new byte[chunk * rowBytes];
        fixed (byte* m = mid)
        fixed (byte* buffer = _rows)
        {
            byte* r = m, gp = m + (long)rows * width, b = m + 2L * rows * width;
            // a file that ends before the rows the window reads is an error for its sample, never a guess from black rows
            if (vertical.Min > 0 && !codec.SkipScanlines(vertical.Min)) throw ImageInput.Incomplete(path);
            for (int done = 0; done < rows; done += chunk)
            {
                int n = Math.Min(chunk, rows - done);
                if (codec.GetScanlines((IntPtr)buffer, n, rowBytes) < n) throw ImageInput.Incomplete(path);
                for (int y = 0; y < n; y++)
                {
                    long at = (long)(done + y) * width;
                    VectorResampler.Horizontal(buffer + (long)y * rowBytes, column0, horizontal, r + at, gp + at, b + at);
                }
            }
            // the rows below the window are decoded too (into the chunk buffer, and dropped), so that a file cut short
            // there is refused as the whole-image decode and TurboJPEG refuse it, not taken on one path and refused on
            // another (skipping them would not tell: libjpeg-turbo skips to the end without reading). A centre crop
            // leaves about 6% of the rows below it, of the window's columns only.
            for (int done = vertical.End; done < decodeHeight; done += chunk)
            {
                int n = Math.Min(chunk, decodeHeight - done);
                if (codec.GetScanlines((IntPtr)buffer, n, rowBytes) < n) throw ImageInput.Incomplete(path);
            }
        }
        return true;
    }

    /// <summary>The whole image decoded at full size, then the horizontal pass over the window's rows.</summary>
    private (byte[] Mid, AxisTaps Vertical) WholeImage(ReadOnlySpan<byte> bytes, string path, (int Width, int Height, int Left, int Top) g, int width, int height)
    {
        var (pixels, w, h) = ImageInput.Decode(bytes, path);
        var horizontal = Taps(w, g.Width, g.Left, width);
        var vertical = Taps(h, g.Height, g.Top, height);
        int rows = vertical.End - vertical.Min;
        var mid = Mid(rows, width);
        fixed (byte* m = mid)
        fixed (byte* p = pixels)
        {
            byte* r = m, gp = m + (long)rows * width, b = m + 2L * rows * width;
            for (int y = 0; y < rows; y++)
            {
                long at = (long)y * width;
                VectorResampler.Horizontal(p + (long)(vertical.Min + y) * w * 4, 0, horizontal, r + at, gp + at, b + at);
            }
        }
        return (mid, vertical);
    }
}
