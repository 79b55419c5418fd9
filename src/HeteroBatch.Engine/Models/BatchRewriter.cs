using Google.Protobuf;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Sessions;
using HeteroBatch.Engine.Runtime;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace HeteroBatch.Engine.Models;

/// <summary>How a model takes a batch.</summary>
public enum BatchMode
{
    /// <summary>The batch dimension is symbolic: any batch size runs in one go.</summary>
    Native,
    /// <summary>The graph had a fixed batch; HeteroBatch made it symbolic and verified the outputs.</summary>
    Rewritten,
    /// <summary>The graph only runs at its fixed batch size: shares run as pieces of that size.</summary>
    Fixed,
}

/// <summary>
/// Many exported models have a fixed batch dimension of 1. This makes the batch dimension of
/// every graph input and output symbolic, then checks that a batch of two gives the same
/// outputs as two runs of one; if it does not (a Reshape with the batch written in, say), the
/// model keeps its fixed batch and its shares run as pieces of that size.
/// </summary>
public static class BatchRewriter
{
    public sealed record Result(string Path, string Sha256, BatchMode Mode, string? Note);

    public static Result Prepare(string path, string sha256, string cacheFolder)
    {
        long? fixedBatch;
        using (var session = OpenCpu(path)) fixedBatch = new ModelSignature(session).FixedBatch;
        if (fixedBatch == null) return new Result(path, sha256, BatchMode.Native, null);

        var target = System.IO.Path.Combine(cacheFolder, "batched", $"{sha256[..16]}.onnx");
        var sidecar = target + ".sha256";
        if (File.Exists(target) && File.Exists(sidecar) && File.ReadAllText(sidecar).Trim() is var recorded && ModelCatalog.HashOf(target) == recorded)
            return new Result(target, recorded, BatchMode.Rewritten, $"the graph's fixed batch of {fixedBatch} was made symbolic (cached)");

        string? why;
        try
        {
            var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
            var initializers = new HashSet<string>(model.Graph.Initializer.Select(i => i.Name));
            foreach (var v in model.Graph.Input.Where(i => !initializers.Contains(i.Name)).Concat(model.Graph.Output))
            {
                var dims = v.Type?.TensorType?.Shape?.Dim;
                if (dims is { Count: > 0 }) dims[0] = new TensorShapeProto.Types.Dimension { DimParam = "N" };
            }
            model.Graph.ValueInfo.Clear(); // inferred shapes may carry the old batch; ONNX Runtime infers them again
            var bytes = model.ToByteArray();
            why = Verify(path, bytes, (int)fixedBatch.Value);
            if (why == null)
            {
                var hash = AtomicFile.Write(target, s => s.Write(bytes));
                AtomicFile.WriteText(sidecar, hash);
                return new Result(target, hash, BatchMode.Rewritten, $"the graph's fixed batch of {fixedBatch} was made symbolic; a batch of two matched two single runs");
            }
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or OnnxRuntimeException or IOException)
        {
            why = e.Message.Trim();
        }
        return new Result(path, sha256, BatchMode.Fixed,
            $"the graph has a fixed batch of {fixedBatch} and cannot be made to batch ({why}); shares run as pieces of {fixedBatch}, so batching brings no speed-up on this model");
    }

    private static InferenceSession OpenCpu(string path)
    {
        OrtRuntime.Initialize();
        using var o = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL, IntraOpNumThreads = 1 };
        return new InferenceSession(path, o);
    }

    /// <summary>Null if the rewritten model's batch of 2·fixed equals the original run twice; else why not.</summary>
    private static string? Verify(string originalPath, byte[] rewritten, int fixedBatch)
    {
        using var o = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL, IntraOpNumThreads = 1 };
        using var original = new LoadedModel(originalPath, o);
        using var batched = new LoadedModel(rewritten, o);
        int n = 2 * fixedBatch;
        var inputs = original.SyntheticInputs(n, 12345);
        var expected = original.AllocateOutputs(n);
        var actual = batched.AllocateOutputs(n);
        original.Run(inputs, expected, 0, n); // runs as two pieces of the fixed batch
        try { batched.Run(inputs, actual, 0, n); }
        catch (OnnxRuntimeException e) { return $"a batch of {n} fails: {e.Message.Trim()}"; }
        for (int k = 0; k < expected.Count; k++)
            if (!Close(expected[k], actual[k])) return $"output '{expected[k].Name}' differs between a batch of {n} and single runs";
        return null;
    }

    private static bool Close(TensorBatch a, TensorBatch b)
    {
        if (a.Data is float[] x && b.Data is float[] y)
        {
            for (int i = 0; i < x.Length; i++)
                if (!(Math.Abs(x[i] - y[i]) <= 1e-4f * (1 + Math.Abs(x[i])))) return false;
            return true;
        }
        return StructuralEquality(a.Data, b.Data);
    }

    private static bool StructuralEquality(Array a, Array b) =>
        System.Collections.StructuralComparisons.StructuralEqualityComparer.Equals(a, b);
}
