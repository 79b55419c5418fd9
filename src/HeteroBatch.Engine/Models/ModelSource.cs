namespace HeteroBatch.Engine.Models;

/// <summary>A model ready to load: a file on disk and the hash of its bytes (which keys stored profiles).</summary>
public sealed class ModelSource
{
    /// <summary>The zoo name, or the file name without extension for a user model.</summary>
    public string Name { get; set; } = "";
    public string Path { get; set; } = "";
    /// <summary>SHA-256 of the file, lower-case hex.</summary>
    public string Sha256 { get; set; } = "";
    public bool IsBuiltIn { get; set; }
    /// <summary>How the model takes a batch (see <see cref="Models.BatchMode"/>).</summary>
    public BatchMode BatchMode { get; set; } = BatchMode.Native;
    /// <summary>The file the user gave, where <see cref="Path"/> is a rewritten copy.</summary>
    public string? OriginalPath { get; set; }
    /// <summary>What was done to make the model batch, or why it cannot.</summary>
    public string? Note { get; set; }

    /// <summary>The model cache this model's derived forms (fp16) are written to.</summary>
    public string? CacheFolder { get; set; }

    /// <summary>
    /// Where set, units run the model's uint8-input form for these preprocessing values
    /// (<see cref="InputPrefix"/>): they take uint8 RGB pixels [N, H, W, 3] and normalise them themselves.
    /// </summary>
    public Data.ImagePreprocessing? PixelForm { get; private set; }

    /// <summary>What a unit's opened sessions are cached by: the content hash, and the pixel form where there is one.</summary>
    public string SessionKey => PixelForm is { } p ? $"{Sha256}:pixels:{InputPrefix.KeyOf(p)}" : Sha256;

    /// <summary>This model as its uint8-input form for <paramref name="preprocessing"/> (the same file, hash and profiles).</summary>
    public ModelSource AsPixelForm(Data.ImagePreprocessing preprocessing)
    {
        var copy = (ModelSource)MemberwiseClone();
        copy.PixelForm = preprocessing;
        return copy;
    }

    /// <summary>Short content hash (first 12 hex digits) for display and file names.</summary>
    public string ShortHash => Sha256.Length >= 12 ? Sha256[..12] : Sha256;

    public override string ToString() => Name;
}
