using System.Security.Cryptography;
using Google.Protobuf;
using HeteroBatch.Engine.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace HeteroBatch.Engine.Models;

/// <summary>
/// Turns what a user typed for -Model (a zoo name or a path to an .onnx file) into a model file.
/// Zoo models are written once into a cache folder (atomically) and rebuilt if damaged.
/// </summary>
public static class ModelCatalog
{
    private static readonly object BuildGate = new();

    /// <summary>The cache folder used where a caller gives none: the platform's user cache folder, not configured (the module and benchmark pass <see cref="EngineOptions.ModelCacheFolder"/>).</summary>
    internal static string PlatformCacheFolder() => new EngineOptions().ModelCacheFolder;

    public static bool LooksLikePath(string model) =>
        model.Contains('/') || model.Contains('\\') || model.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase);

    /// <summary>Resolves a zoo name or a file path. Throws ModelNotFound, ModelFileNotFound or ModelInvalid.</summary>
    public static ModelSource Resolve(string model, string? cacheFolder = null, string? basePath = null)
    {
        if (string.IsNullOrWhiteSpace(model))
            throw new HeteroBatchException("ModelNotFound", FailureKind.InvalidArgument, $"No model given. Built-in models: {string.Join(", ", ModelZoo.Names)}.");
        if (LooksLikePath(model) || (basePath != null && (File.Exists(Path.Combine(basePath, model)) || Directory.Exists(Path.Combine(basePath, model)))))
            return FromFile(basePath == null ? model : Path.Combine(basePath, model), cacheFolder ?? PlatformCacheFolder());
        var zoo = ModelZoo.Find(model)
            ?? throw new HeteroBatchException("ModelNotFound", FailureKind.ObjectNotFound,
                $"No built-in model is named '{model}'. Built-in models: {string.Join(", ", ModelZoo.Names)}. To use your own, pass the path of an .onnx file.", model);
        return FromZoo(zoo, cacheFolder ?? PlatformCacheFolder());
    }

    private static ModelSource FromFile(string path, string cacheFolder)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new HeteroBatchException("ModelPathIsFolder", FailureKind.InvalidArgument, $"{full} is a folder; -Model takes a built-in name or the path of an .onnx file.", full);
        if (!File.Exists(full))
            throw new HeteroBatchException("ModelFileNotFound", FailureKind.ObjectNotFound, $"Model file not found: {full}", full);
        var hash = HashOf(full);
        Validate(full);
        var prepared = BatchRewriter.Prepare(full, hash, cacheFolder);
        return new ModelSource
        {
            Name = Path.GetFileNameWithoutExtension(full), Path = prepared.Path, Sha256 = prepared.Sha256, IsBuiltIn = false,
            BatchMode = prepared.Mode, Note = prepared.Note, OriginalPath = prepared.Path == full ? null : full, CacheFolder = cacheFolder,
        };
    }

    /// <summary>Loads the file with ONNX Runtime (no optimisation) and reports its reason if that fails.</summary>
    public static void Validate(string path)
    {
        OrtRuntime.Initialize();
        try
        {
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
            options.IntraOpNumThreads = 1;
            using var session = new InferenceSession(path, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new HeteroBatchException("ModelInvalid", FailureKind.InvalidData, $"Not a valid ONNX model: {path}: {e.Message.Trim()}", path, e);
        }
    }

    private static ModelSource FromZoo(ZooModel zoo, string cacheFolder)
    {
        Directory.CreateDirectory(cacheFolder);
        var file = Path.Combine(cacheFolder, $"{zoo.Name}.v{ModelZoo.BuilderVersion}.onnx");
        var sidecar = file + ".sha256";
        lock (BuildGate)
        {
            var hash = CachedHashIfIntact(file, sidecar);
            if (hash == null)
            {
                hash = AtomicFile.Write(file, stream => ModelZoo.Build(zoo.Name).WriteTo(stream));
                AtomicFile.WriteText(sidecar, hash);
            }
            return new ModelSource { Name = zoo.Name, Path = file, Sha256 = hash, IsBuiltIn = true, CacheFolder = cacheFolder };
        }
    }

    /// <summary>The hash of a cached file if its bytes still match the hash recorded beside it; null if missing or damaged.</summary>
    private static string? CachedHashIfIntact(string file, string sidecar)
    {
        if (!File.Exists(file) || !File.Exists(sidecar)) return null;
        try
        {
            var recorded = File.ReadAllText(sidecar).Trim();
            return HashOf(file) == recorded ? recorded : null;
        }
        catch (IOException) { return null; }
    }

    /// <summary>SHA-256 of a file's bytes. Read every time: a cache keyed by size and time would miss an edit that kept both.</summary>
    public static string HashOf(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
    }

    /// <summary>
    /// The file a unit at <paramref name="precision"/> runs: the model itself for Fp32 and Tf32;
    /// for Fp16 its converted form, written once into the cache under the fp32 file's content hash
    /// (and checked against the hash recorded beside it). Throws PrecisionUnsupported for models
    /// that cannot be converted.
    /// </summary>
    public static string PathFor(ModelSource model, Precision precision)
    {
        if (precision != Precision.Fp16) return model.Path;
        var folder = Path.Combine(model.CacheFolder ?? PlatformCacheFolder(), "fp16");
        var file = Path.Combine(folder, $"{model.Sha256[..Math.Min(16, model.Sha256.Length)]}.v{ConverterVersion}.onnx");
        var sidecar = file + ".sha256";
        lock (BuildGate)
        {
            if (CachedHashIfIntact(file, sidecar) == null)
            {
                Onnx.ModelProto source;
                try { source = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(model.Path)); }
                catch (InvalidProtocolBufferException e) { throw new HeteroBatchException("ModelInvalid", FailureKind.InvalidData, $"Not a valid ONNX model: {model.Path}: {e.Message}", model.Path, e); }
                var half = PrecisionConverter.ToFloat16(ExternalData.Inline(source, Path.GetDirectoryName(Path.GetFullPath(model.Path))!, model.Path));
                var hash = AtomicFile.Write(file, s => half.WriteTo(s));
                AtomicFile.WriteText(sidecar, hash);
            }
        }
        return file;
    }

    /// <summary>Bumped whenever the fp16 conversion changes; part of the converted files' names.</summary>
    public const int ConverterVersion = 1;

    /// <summary>
    /// A model to write out: a built-in network (its batch fixed where asked) or the .onnx file at
    /// a path, at a precision (Fp16: converted; Fp32 and Tf32: as it is), with weights kept in external
    /// data read into it (see <see cref="ExternalData"/>). Throws ModelNotFound, ModelFileNotFound,
    /// ModelInvalid or PrecisionUnsupported.
    /// </summary>
    public static Onnx.ModelProto ForExport(string nameOrPath, long? fixedBatch, Precision precision, string? basePath = null)
    {
        Onnx.ModelProto model;
        if (ModelZoo.Find(nameOrPath) is { } zoo) model = ModelZoo.Build(zoo.Name, fixedBatch);
        else
        {
            var path = Path.GetFullPath(basePath == null ? nameOrPath : Path.Combine(basePath, nameOrPath));
            if (!LooksLikePath(nameOrPath) && !File.Exists(path))
                throw new HeteroBatchException("ModelNotFound", FailureKind.ObjectNotFound, $"No built-in model is named '{nameOrPath}'. Built-in models: {string.Join(", ", ModelZoo.Names)}. To use your own, pass the path of an .onnx file.", nameOrPath);
            if (!File.Exists(path)) throw new HeteroBatchException("ModelFileNotFound", FailureKind.ObjectNotFound, $"Model file not found: {path}", path);
            Validate(path);
            // weights kept in external data are read in: the file written elsewhere, or converted, is whole
            model = ExternalData.Inline(Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)), Path.GetDirectoryName(path)!, path);
        }
        return precision == Precision.Fp16 ? PrecisionConverter.ToFloat16(model) : model;
    }
}
