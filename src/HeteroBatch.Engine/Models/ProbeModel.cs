using Google.Protobuf;
using Onnx;

namespace HeteroBatch.Engine.Models;

/// <summary>A one-node model (Relu on [1, 1]) used to test whether a provider starts a session.</summary>
internal static class ProbeModel
{
    private static readonly Lazy<byte[]> Cached = new(() =>
    {
        var g = new GraphBuilder("probe", 1);
        var x = g.Input("x", 1, 0, 0, fixedBatch: 1);
        g.Output(g.Relu(x), "y", fixedBatch: 1);
        return g.Build("probe").ToByteArray();
    });

    public static byte[] Bytes => Cached.Value;
}
