using System.Collections.Concurrent;

namespace HeteroBatch.Engine.Models;

/// <summary>
/// The models a context has resolved, by name or path and by content hash: a model file is hashed
/// once, and again only when its length or time of writing changes. Safe from any thread.
/// </summary>
public sealed class ModelRegistry
{
    private readonly Func<string?> _cacheFolder;
    private readonly ConcurrentDictionary<string, (ModelSource Source, FileStamp Stamp)> _byRequest = new();
    private readonly ConcurrentDictionary<string, (ModelSource Source, FileStamp Stamp)> _byHash = new();

    /// <param name="cacheFolder">The model cache now (it may change in a session); null: the default one.</param>
    public ModelRegistry(Func<string?>? cacheFolder = null) => _cacheFolder = cacheFolder ?? (() => null);

    private readonly record struct FileStamp(long Length, DateTime WrittenUtc)
    {
        public static FileStamp Of(string path)
        {
            var info = new FileInfo(path);
            return info.Exists ? new FileStamp(info.Length, info.LastWriteTimeUtc) : default;
        }
    }

    /// <summary>A model by name or path (ModelNotFound, ModelFileNotFound, ModelInvalid).</summary>
    public ModelSource Resolve(string model, string? basePath = null)
    {
        var key = (basePath ?? "") + "\n" + model;
        if (_byRequest.TryGetValue(key, out var known) && Unchanged(known)) return known.Source;
        var source = ModelCatalog.Resolve(model, _cacheFolder(), basePath);
        Remember(key, source);
        return source;
    }

    /// <summary>The model a plan was made for, by its content hash (ModelChanged when no such file is found); its batch mode is the plan's where the plan knows better.</summary>
    public ModelSource For(string name, string sha256, string? path, BatchMode batchMode)
    {
        var plan = (Model: name, ModelSha256: sha256, ModelPath: path, BatchMode: batchMode);
        if (_byHash.TryGetValue(plan.ModelSha256, out var known) && Unchanged(known)) return WithPlansMode(known.Source, plan);
        var source = plan.ModelPath != null && File.Exists(plan.ModelPath) && ModelCatalog.HashOf(plan.ModelPath) == plan.ModelSha256
            ? new ModelSource { Name = plan.Model, Path = plan.ModelPath, Sha256 = plan.ModelSha256, IsBuiltIn = ModelZoo.Find(plan.Model) != null, BatchMode = plan.BatchMode, CacheFolder = _cacheFolder() }
            : ModelZoo.Find(plan.Model) != null ? ModelCatalog.Resolve(plan.Model, _cacheFolder()) : null;
        if (source == null || source.Sha256 != plan.ModelSha256)
            throw new HeteroBatchException("ModelChanged", FailureKind.InvalidData,
                $"The plan is for '{plan.Model}' with content hash {plan.ModelSha256[..Math.Min(12, plan.ModelSha256.Length)]}, and no such model file is found now; profile and plan again.", plan.Model);
        _byHash[source.Sha256] = (source, FileStamp.Of(Watched(source)));
        return WithPlansMode(source, plan);
    }

    private static ModelSource WithPlansMode(ModelSource source, (string Model, string ModelSha256, string? ModelPath, BatchMode BatchMode) plan) =>
        plan.BatchMode == BatchMode.Native || plan.BatchMode == source.BatchMode ? source
            : new ModelSource
            {
                Name = source.Name, Path = source.Path, Sha256 = source.Sha256, IsBuiltIn = source.IsBuiltIn, BatchMode = plan.BatchMode,
                OriginalPath = source.OriginalPath, Note = source.Note ?? $"the plan says its samples are batched as {plan.BatchMode}", CacheFolder = source.CacheFolder,
            };

    private void Remember(string key, ModelSource source)
    {
        var entry = (source, FileStamp.Of(Watched(source)));
        _byRequest[key] = entry;
        _byHash[source.Sha256] = entry;
    }

    /// <summary>The file whose change makes a model stale: the user's own file where the model runs from a rewritten copy.</summary>
    private static string Watched(ModelSource source) => source.OriginalPath ?? source.Path;

    private static bool Unchanged((ModelSource Source, FileStamp Stamp) known) => known.Stamp != default && FileStamp.Of(Watched(known.Source)) == known.Stamp;
}
