using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch.Engine.Profiling;

/// <summary>
/// Stored performance tables: one JSON file per (model, unit fingerprint) in a folder. Writes
/// take a lock file, merge with what is there and replace the file atomically; a file that does
/// not parse is moved aside (never overwritten) and reported as ProfileCorrupt.
/// </summary>
public sealed class ProfileStore
{
    public const string PathVariable = "HETEROBATCH_PROFILE_PATH";

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string Folder { get; }
    private readonly Action<HeteroBatchException>? _warn;

    /// <param name="folder">The store folder; null for <see cref="DefaultFolder"/>.</param>
    /// <param name="warn">Receives ProfileCorrupt warnings.</param>
    public ProfileStore(string? folder = null, Action<HeteroBatchException>? warn = null)
    {
        Folder = Path.GetFullPath(folder ?? DefaultFolder());
        _warn = warn;
    }

    /// <summary>$HETEROBATCH_PROFILE_PATH, else $XDG_DATA_HOME/HeteroBatch/profiles, else ~/.local/share/HeteroBatch/profiles.</summary>
    public static string DefaultFolder()
    {
        var explicitDir = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrEmpty(explicitDir)) return explicitDir;
        var xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        var root = !string.IsNullOrEmpty(xdg) ? xdg : Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        if (string.IsNullOrEmpty(root)) root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(root, "HeteroBatch", "profiles");
    }

    public static string FileNameFor(string model, string modelSha, string unitId, string fingerprint)
    {
        static string Safe(string s) => new(s.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
        var shortHash = modelSha.Length >= 12 ? modelSha[..12] : modelSha;
        return $"{Safe(model)}-{shortHash}__{Safe(unitId)}-{fingerprint}.json";
    }

    public string PathFor(UnitProfile p) => Path.Combine(Folder, FileNameFor(p.Model, p.ModelSha256, p.Unit.Id, p.Unit.Fingerprint));

    /// <summary>Saves a profile, merging its entries into any stored ones (new measurements replace old ones of the same batch size). Returns the merged profile.</summary>
    public UnitProfile Save(UnitProfile profile)
    {
        Directory.CreateDirectory(Folder);
        var path = PathFor(profile);
        using var _ = AcquireLock(path);
        var merged = profile;
        var existing = TryRead(path);
        if (existing != null)
        {
            var byBatch = existing.Entries.ToDictionary(e => e.BatchSize);
            foreach (var e in profile.Entries) byBatch[e.BatchSize] = e;
            merged = profile;
            merged.Entries = byBatch.Values.OrderBy(e => e.BatchSize).ToList();
            merged.MaxBatchSize = Math.Max(existing.MaxBatchSize, profile.MaxBatchSize);
            if (profile.FailedBatchSize == null && existing.FailedBatchSize is int f && f > merged.MaxBatchSize)
            {
                merged.FailedBatchSize = f;
                merged.FailureReason = existing.FailureReason;
            }
        }
        Write(path, merged);
        return merged;
    }

    /// <summary>Replaces a stored profile as given (no merge): for edits.</summary>
    public void Replace(UnitProfile profile)
    {
        Directory.CreateDirectory(Folder);
        var path = PathFor(profile);
        using var _ = AcquireLock(path);
        Write(path, profile);
    }

    public bool Remove(UnitProfile profile)
    {
        var path = PathFor(profile);
        if (!File.Exists(path)) return false;
        using var _ = AcquireLock(path);
        File.Delete(path);
        return true;
    }

    /// <summary>Every readable stored profile, optionally filtered by model name (or hash) and unit id (wildcards allowed).</summary>
    public IReadOnlyList<UnitProfile> Load(string? model = null, IReadOnlyCollection<string>? unitIds = null)
    {
        var result = new List<UnitProfile>();
        if (!Directory.Exists(Folder)) return result;
        foreach (var file in Directory.EnumerateFiles(Folder, "*.json").OrderBy(f => f, StringComparer.Ordinal))
        {
            var p = TryRead(file);
            if (p == null) continue;
            if (model != null && !string.Equals(p.Model, model, StringComparison.OrdinalIgnoreCase) && p.ModelSha256 != model) continue;
            if (unitIds is { Count: > 0 } && !unitIds.Any(u => Wildcard.IsMatch(p.Unit.Id, u))) continue;
            result.Add(p);
        }
        return result;
    }

    private void Write(string path, UnitProfile profile) =>
        AtomicFile.Write(path, s => JsonSerializer.Serialize(s, profile, Json));

    /// <summary>Reads one file; null (and a ProfileCorrupt warning, the file moved aside) when it is not a valid profile.</summary>
    private UnitProfile? TryRead(string path)
    {
        if (!File.Exists(path)) return null;
        string reason;
        try
        {
            var bytes = File.ReadAllBytes(path);
            var p = bytes.Length == 0 ? null : JsonSerializer.Deserialize<UnitProfile>(bytes, Json);
            if (p != null && p.SchemaVersion == UnitProfile.CurrentSchema && !string.IsNullOrEmpty(p.Model) && p.Entries != null && p.Unit != null)
                return p;
            reason = bytes.Length == 0 ? "the file is empty"
                : p?.SchemaVersion != UnitProfile.CurrentSchema ? $"schema version {p?.SchemaVersion} is not {UnitProfile.CurrentSchema}"
                : "required fields are missing";
        }
        catch (JsonException e) { reason = e.Message; }
        catch (IOException e) { _warn?.Invoke(new HeteroBatchException("ProfileUnreadable", FailureKind.ResourceUnavailable, $"Could not read {path}: {e.Message}", path)); return null; }

        var aside = $"{path}.corrupt-{DateTime.UtcNow:yyyyMMddTHHmmssfff}";
        try { File.Move(path, aside); } catch (IOException) { aside = path; }
        _warn?.Invoke(new HeteroBatchException("ProfileCorrupt", FailureKind.InvalidData,
            $"Stored profile {path} is not valid ({reason}); it was moved aside to {aside} and ignored.", aside));
        return null;
    }

    /// <summary>
    /// An exclusive lock on a file beside the profile (flock on Linux): other processes wait (up to
    /// 60 s). The lock file stays: deleting it on close would let two waiters lock different files.
    /// </summary>
    private static FileStream AcquireLock(string path)
    {
        var lockPath = path + ".lock";
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(20);
            }
        }
    }
}
