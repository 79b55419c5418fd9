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
public sealed partial class ProfileStore
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string Folder { get; }
    private readonly Action<HeteroBatchException>? _warn;

    private readonly TimeSpan _lockWait;

    /// <param name="folder">The store folder (the module's default is <see cref="EngineOptions.ProfileStorePath"/>).</param>
    /// <param name="warn">Receives ProfileCorrupt and ProfileSchemaNewer warnings.</param>
    /// <param name="lockWait">How long a writer waits for another process's lock before ProfileStoreBusy (default 60 s).</param>
    public ProfileStore(string folder, Action<HeteroBatchException>? warn = null, TimeSpan? lockWait = null)
    {
        Folder = Path.GetFullPath(folder);
        if (File.Exists(Folder))
            throw new HeteroBatchException("ProfilePathIsFile", FailureKind.InvalidArgument,
                $"The profile store must be a folder; {Folder} is a file.", Folder);
        _warn = warn;
        _lockWait = lockWait ?? TimeSpan.FromSeconds(60);
    }

    /// <summary>Runs a write, turning the file system's refusals into ProfileStoreFailed.</summary>
    private T Writing<T>(Func<T> write)
    {
        try { return write(); }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException && e is not HeteroBatchException)
        {
            throw new HeteroBatchException("ProfileStoreFailed", FailureKind.WriteError, $"Could not write to the profile store {Folder}: {e.Message}", Folder, e);
        }
    }

    public static string FileNameFor(string model, string modelSha, string unitId, string fingerprint)
    {
        var shortHash = modelSha.Length >= 12 ? modelSha[..12] : modelSha;
        return $"{FileNames.Safe(model)}-{shortHash}__{FileNames.Safe(unitId)}-{fingerprint}.json";
    }

    public string PathFor(UnitProfile p) => Path.Combine(Folder, FileNameFor(p.Model, p.ModelSha256, p.Unit.Id, p.Unit.Fingerprint));

    /// <summary>Saves a profile, merging its entries into any stored ones (new measurements replace old ones of the same batch size). Returns the merged profile.</summary>
    public UnitProfile Save(UnitProfile profile) => Writing(() => SaveUnchecked(profile));

    private UnitProfile SaveUnchecked(UnitProfile profile)
    {
        Directory.CreateDirectory(Folder);
        var path = PathFor(profile);
        using var _ = AcquireLock(path);
        var merged = profile;
        var existing = TryRead(path);
        if (existing == null && File.Exists(path) && IsNewer(path))
            throw new HeteroBatchException("ProfileSchemaNewer", FailureKind.InvalidData,
                $"{path} was written by a newer HeteroBatch (schema above {UnitProfile.CurrentSchema}); it was not overwritten and these measurements were not stored.", path);
        if (existing != null)
        {
            var byBatch = existing.Table.ToDictionary(e => e.BatchSize);
            foreach (var e in profile.Table) byBatch[e.BatchSize] = e;
            merged = profile;
            merged.Table = byBatch.Values.OrderBy(e => e.BatchSize).ToList();
            merged.MaxBatchSize = Math.Max(existing.MaxBatchSize, profile.MaxBatchSize);
            if (profile.FailedBatchSize == null && existing.FailedBatchSize is int f && f > merged.MaxBatchSize)
            {
                merged.FailedBatchSize = f;
                merged.FailureReason = existing.FailureReason;
            }
        }
        Write(path, merged);
        merged.StoredIn = Folder;
        return merged;
    }

    /// <summary>Replaces a stored profile as given (no merge): for edits.</summary>
    public void Replace(UnitProfile profile) => Writing(() =>
    {
        Directory.CreateDirectory(Folder);
        var path = PathFor(profile);
        using var _ = AcquireLock(path);
        Write(path, profile);
        return true;
    });

    public bool Remove(UnitProfile profile) => Writing(() =>
    {
        var path = PathFor(profile);
        if (!File.Exists(path)) return false;
        using var _ = AcquireLock(path);
        File.Delete(path);
        return true;
    });

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
            p.StoredIn = Folder;
            result.Add(p);
        }
        return result;
    }

    /// <summary>True if the file parses as a profile of a schema newer than this module's.</summary>
    private static bool IsNewer(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.TryGetProperty("SchemaVersion", out var v) && v.TryGetInt32(out var n) && n > UnitProfile.CurrentSchema;
        }
        catch (JsonException) { return false; }
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
            if (p != null && p.SchemaVersion == UnitProfile.CurrentSchema && !string.IsNullOrEmpty(p.Model) && p.Table != null && p.Unit != null)
                return p;
            if (p != null && p.SchemaVersion > UnitProfile.CurrentSchema)
            {
                // written by a newer HeteroBatch: not ours to judge or move; that version still reads it
                _warn?.Invoke(new HeteroBatchException("ProfileSchemaNewer", FailureKind.InvalidData,
                    $"Stored profile {path} has schema version {p.SchemaVersion}, newer than this module's {UnitProfile.CurrentSchema}; it was left in place and skipped.", path));
                return null;
            }
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
    private FileStream AcquireLock(string path)
    {
        var lockPath = path + ".lock";
        var deadline = DateTime.UtcNow + _lockWait;
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
            catch (IOException e) when (e.GetType() == typeof(IOException))
            {
                throw new HeteroBatchException("ProfileStoreBusy", FailureKind.ResourceUnavailable,
                    $"Another process has held the lock on {lockPath} for {_lockWait.TotalSeconds:F0} s; nothing was written.", lockPath, e);
            }
        }
    }
}
