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
    /// <summary>A sample's outputs depend on the other samples of its batch (a reduction over the batch axis, say): the batch must run whole, on one unit.</summary>
    SamplesInteract,
}

/// <summary>
/// Many exported models have a fixed batch dimension of 1. This makes the batch dimension of
/// every graph input and output symbolic, then checks that a batch of two gives the same
/// outputs as two runs of one; if it does not (a Reshape with the batch written in, say), the
/// model keeps its fixed batch and its shares run as pieces of that size.
/// </summary>
internal static class BatchRewriter
{
    public sealed record Result(string Path, string Sha256, BatchMode Mode, string? Note);

    public static Result Prepare(string path, string sha256, string cacheFolder)
    {
        long? fixedBatch;
        string? interaction;
        using (var session = OpenCpu(path))
        {
            fixedBatch = new ModelSignature(session).FixedBatch;
            int probe = fixedBatch is long k ? (int)k : 2;
            if (DroppedBatchAxis(session, probe) is { } dropped)
                throw new HeteroBatchException("BatchAxisDropped", FailureKind.InvalidData,
                    $"{System.IO.Path.GetFileName(path)}: {dropped}. HeteroBatch splits batches along axis 0 of every input and output, so a model whose output does not keep the batch axis (a reduction over the batch, say) cannot be run on a batch.", path);
            interaction = SamplesInteract(session, probe);
        }
        if (interaction != null)
            return new Result(path, sha256, BatchMode.SamplesInteract, interaction);
        if (fixedBatch == null) return new Result(path, sha256, BatchMode.Native, null);

        var target = System.IO.Path.Combine(cacheFolder, "batched", $"{sha256[..16]}.onnx");
        var sidecar = target + ".sha256";
        if (File.Exists(target) && File.Exists(sidecar) && File.ReadAllText(sidecar).Trim() is var recorded && ModelCatalog.HashOf(target) == recorded)
            return new Result(target, recorded, BatchMode.Rewritten, $"the graph's fixed batch of {fixedBatch} was made symbolic (cached)");

        string? why;
        try
        {
            var model = ExternalData.Inline(ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)), System.IO.Path.GetDirectoryName(path)!, path); // the rewrite lives in the cache, away from the data files
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
        catch (Exception e) when (e is InvalidProtocolBufferException or OnnxRuntimeException or IOException or HeteroBatchException)
        {
            why = e.Message.Trim();
        }
        return new Result(path, sha256, BatchMode.Fixed,
            $"the graph has a fixed batch of {fixedBatch} and cannot be made to batch ({why}); shares run as pieces of {fixedBatch}, so batching brings no speed-up on this model");
    }

    /// <summary>
    /// Which output does not keep the batch axis: a batch of <paramref name="batch"/> run with ONNX Runtime sizing the
    /// outputs, each output's first dimension compared with the batch (x [N,4] → ReduceSum over axis 0 → y [1,4], say).
    /// Null where every output keeps it, the batch is one (nothing to tell), or the model does not run on synthetic inputs.
    /// </summary>
    private static string? DroppedBatchAxis(InferenceSession session, int batch)
    {
        if (batch < 2 || batch > 64) return null;
        using var model = new LoadedModel(session, owns: false);
        var inputs = model.SyntheticInputs(batch, 4242);
        var values = inputs.Select(t => t.CreateValue(0, batch)).ToList();
        try
        {
            using var options = new RunOptions();
            var names = model.Signature.Outputs.Select(o => o.Name).ToList();
            using var results = session.Run(options, model.Signature.Inputs.Select(i => i.Name).ToList(), values, names);
            int k = 0;
            foreach (var r in results)
            {
                var shape = r.GetTensorTypeAndShape().Shape;
                if (shape.Length == 0 || shape[0] != batch)
                    return $"output '{names[k]}' has shape [{string.Join(",", shape)}] for a batch of {batch}: its first dimension is not the batch";
                k++;
            }
            return null;
        }
        catch (OnnxRuntimeException) { return null; } // it does not run this way: the checks that follow say why
        finally { values.ForEach(v => v.Dispose()); }
    }

    /// <summary>
    /// Whether one sample's outputs change when another sample of the batch changes: run a batch
    /// of <paramref name="batch"/>, then again with the last sample changed, and compare the first
    /// sample's outputs. Null if they are independent (or the batch is one); else what was seen.
    /// </summary>
    private static string? SamplesInteract(InferenceSession session, int batch)
    {
        if (batch < 2 || batch > 64) return null;
        using var model = new LoadedModel(session, owns: false);
        var inputs = model.SyntheticInputs(batch, 4242);
        var changed = inputs.Select(t => t.EmptyLike(batch)).ToList();
        var other = model.SyntheticInputs(batch, 9191);
        for (int i = 0; i < inputs.Count; i++)
        {
            inputs[i].CopyTo(0, batch, changed[i], 0);
            other[i].CopyTo(batch - 1, 1, changed[i], batch - 1); // only the last sample differs
        }
        var a = model.AllocateOutputs(batch);
        var b = model.AllocateOutputs(batch);
        try
        {
            model.Run(inputs, a, 0, batch);
            model.Run(changed, b, 0, batch);
        }
        catch (OnnxRuntimeException) { return null; } // it does not run this way: nothing to tell here
        for (int k = 0; k < a.Count; k++)
            if (!a[k].Bytes(0, 1).SequenceEqual(b[k].Bytes(0, 1)))
                return $"output '{a[k].Name}' of the first sample changed when only the last sample of a batch of {batch} changed: its samples depend on each other, so the batch cannot be split across units or sub-batches";
        return null;
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
