using HeteroBatch.Engine.Data;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace HeteroBatch.Engine.Sessions;

/// <summary>
/// The one rule by which a server says it takes encoded images for a model: beside model <c>M</c> it serves a model
/// named <c>M_encoded</c> (<see cref="NameFor"/>) whose one input is BYTES, one element per sample (shape [-1] or
/// [-1, 1]: an image file's bytes each), and whose outputs are <c>M</c>'s. A HeteroBatch server serves that form for
/// every image model (it decodes with <see cref="Preprocessing"/>); a Triton ensemble that decodes is served under that
/// name to be used the same way. Read from the model metadata, so it is the same over REST and gRPC.
/// </summary>
public static class EncodedImageModel
{
    public const string Suffix = "_encoded";

    /// <summary>The name of the encoded-image form of <paramref name="model"/>.</summary>
    public static string NameFor(string model) => model + Suffix;

    /// <summary>How a HeteroBatch server decodes encoded images: ImageNet's evaluation (torchvision's), exact mode.</summary>
    public static ImagePreprocessing Preprocessing => ImagePreprocessing.ImageNet;

    /// <summary>True when a job decoding with <paramref name="a"/> gets the server's pixels from <paramref name="b"/> (the decode mode aside).</summary>
    public static bool SamePixels(ImagePreprocessing a, ImagePreprocessing b) =>
        a.Resize == b.Resize && a.CropFraction == b.CropFraction && a.ChannelOrder == b.ChannelOrder
        && a.Mean.SequenceEqual(b.Mean) && a.Std.SequenceEqual(b.Std);

    /// <summary>The encoded form of a model of <paramref name="signature"/>: its one image input as BYTES (one element a sample), the same outputs; null where it has not one image input.</summary>
    public static ModelSignature? SignatureFor(ModelSignature signature)
    {
        if (signature.Inputs.Count != 1) return null;
        try { ImageInput.Layout(signature.Inputs[0]); }
        catch (HeteroBatchException) { return null; }
        return new ModelSignature(new[] { new TensorSpec(signature.Inputs[0].Name, TensorElementType.String, Array.Empty<long>()) }, signature.Outputs);
    }

    /// <summary>
    /// The BYTES input of an encoded form as its metadata declares it, where it is one (one input, BYTES, shape [-1] or
    /// [-1, 1]) with the outputs of <paramref name="floats"/> (names, types and sample shapes); null otherwise.
    /// </summary>
    public static TensorSpec? InputOf(ModelSignature encoded, ModelSignature floats)
    {
        if (encoded.Inputs.Count != 1) return null;
        var input = encoded.Inputs[0];
        if (input.ElementType != TensorElementType.String || !(input.SampleShape.Length == 0 || input.SampleShape is [1])) return null;
        bool sameOutputs = encoded.Outputs.Count == floats.Outputs.Count && encoded.Outputs.Zip(floats.Outputs).All(p =>
            p.First.Name == p.Second.Name && p.First.ElementType == p.Second.ElementType && p.First.SampleShape.SequenceEqual(p.Second.SampleShape));
        return sameOutputs ? input : null;
    }
}

/// <summary>A model on an inference server (REST or gRPC): runs of tensors, and runs of one BYTES input.</summary>
internal interface IRemoteSession : IModelSession
{
    /// <summary>One request of a BYTES input (<paramref name="elements"/>, a sample each) in <paramref name="shape"/>; its answers written into rows <paramref name="offset"/>.. of <paramref name="outputs"/>.</summary>
    void RunBytes(string input, long[] shape, IReadOnlyList<ReadOnlyMemory<byte>> elements, IReadOnlyList<TensorBatch> outputs, int offset, CancellationToken cancel);
    /// <summary>Bytes of the infer requests sent so far (REST: the bodies; gRPC: the messages).</summary>
    long BytesSent { get; }
}
