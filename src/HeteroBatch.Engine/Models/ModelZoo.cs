using HeteroBatch.Engine.Runtime;
using Onnx;

namespace HeteroBatch.Engine.Models;

/// <summary>A built-in network: what it is and how to write it.</summary>
public sealed class ZooModel
{
    public string Name { get; init; } = "";
    public string Description { get; init; } = "";
    /// <summary>Per-sample input shape: channels, height, width.</summary>
    public Data.ValueList<int> InputShape { get; init; } = new();
    public int Classes { get; init; }
    /// <summary>Trainable parameters of the reference architecture.</summary>
    public long Parameters { get; init; }
    /// <summary>Floating-point operations per image (2 × multiply-accumulates of convolutions and dense layers).</summary>
    public double GFlops { get; init; }
    /// <summary>True for networks made for tests and demos rather than taken from the seed.</summary>
    public bool IsTestModel { get; init; }
    internal Func<GraphBuilder, Feature> Body { get; init; } = null!;
}

/// <summary>
/// The seed's ten networks (TVM's test workloads: standard architectures, random weights),
/// plus 'tinynet', a small CNN for tests. Same name → same bytes: weights are seeded by name
/// and <see cref="BuilderVersion"/>.
/// </summary>
public static class ModelZoo
{
    /// <summary>Bumped whenever any built graph changes; part of the cache key.</summary>
    public const int BuilderVersion = 1;
    public const string InputName = "input";
    public const string OutputName = "logits";

    private static readonly (string Name, string Description, int[] Shape, bool Test, Func<GraphBuilder, Feature, Feature> Body)[] Definitions =
    {
        ("mobilenet", "MobileNet v1 1.0/224", new[] { 3, 224, 224 }, false, MobileNetV1),
        ("squeezenet_v1.0", "SqueezeNet 1.0", new[] { 3, 224, 224 }, false, (g, x) => SqueezeNet(g, x, v11: false)),
        ("squeezenet_v1.1", "SqueezeNet 1.1", new[] { 3, 224, 224 }, false, (g, x) => SqueezeNet(g, x, v11: true)),
        ("resnet-18", "ResNet-18", new[] { 3, 224, 224 }, false, (g, x) => ResNet(g, x, new[] { 2, 2, 2, 2 }, bottleneck: false)),
        ("resnet-34", "ResNet-34", new[] { 3, 224, 224 }, false, (g, x) => ResNet(g, x, new[] { 3, 4, 6, 3 }, bottleneck: false)),
        ("resnet-50", "ResNet-50 (v1.5)", new[] { 3, 224, 224 }, false, (g, x) => ResNet(g, x, new[] { 3, 4, 6, 3 }, bottleneck: true)),
        ("inception_v3", "Inception v3 at 299×299, no auxiliary head", new[] { 3, 299, 299 }, false, InceptionV3),
        ("vgg-16", "VGG-16 (no batch norm)", new[] { 3, 224, 224 }, false, (g, x) => Vgg(g, x, new[] { 2, 2, 3, 3, 3 })),
        ("vgg-19", "VGG-19 (no batch norm)", new[] { 3, 224, 224 }, false, (g, x) => Vgg(g, x, new[] { 2, 2, 4, 4, 4 })),
        ("densenet-121", "DenseNet-121", new[] { 3, 224, 224 }, false, DenseNet121),
        ("tinynet", "A three-layer CNN on 32×32 inputs, 10 classes: for tests and quick demos", new[] { 3, 32, 32 }, true, TinyNet),
        ("tinynet-224", "A two-layer CNN on 224×224 inputs (8×8 patches), 10 classes: for tests of full-size images", new[] { 3, 224, 224 }, true, TinyNet224),
    };

    private static readonly Lazy<IReadOnlyList<ZooModel>> Catalog = new(() => Definitions.Select(Describe).ToList());

    /// <summary>Every built-in network, with its parameter count and GFLOPs (computed by building its graph shape).</summary>
    public static IReadOnlyList<ZooModel> Models => Catalog.Value;

    public static IReadOnlyList<string> Names => Definitions.Select(d => d.Name).ToList();

    public static ZooModel? Find(string name) =>
        Models.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase));

    private static ZooModel Describe((string Name, string Description, int[] Shape, bool Test, Func<GraphBuilder, Feature, Feature> Body) d)
    {
        var counter = new GraphBuilder(d.Name, 1) { CountOnly = true };
        var logits = d.Body(counter, counter.Input(InputName, d.Shape[0], d.Shape[1], d.Shape[2]));
        return new ZooModel
        {
            Name = d.Name, Description = d.Description, InputShape = d.Shape, Classes = logits.C, IsTestModel = d.Test,
            Parameters = counter.Parameters, GFlops = Math.Round(2.0 * counter.MultiplyAccumulates / 1e9, 3),
            Body = g => d.Body(g, g.Input(InputName, d.Shape[0], d.Shape[1], d.Shape[2])),
        };
    }

    /// <summary>Writes the named network as an ONNX model with seeded weights.</summary>
    public static ModelProto Build(string name, long? fixedBatch = null)
    {
        var def = Definitions.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));
        if (def.Name == null) throw new ArgumentException($"unknown model '{name}'", nameof(name));
        var g = new GraphBuilder(def.Name, WeightGenerator.Mix(def.Name, BuilderVersion));
        var x = g.Input(InputName, def.Shape[0], def.Shape[1], def.Shape[2], fixedBatch);
        g.Output(def.Body(g, x), OutputName, fixedBatch);
        return g.Build($"zoo-v{BuilderVersion}");
    }

    private static Feature TinyNet(GraphBuilder g, Feature x)
    {
        x = g.MaxPool(g.Relu(g.Conv(x, 16, 3, 3, ph: 1, pw: 1, bias: true)), 2, 2);
        x = g.MaxPool(g.Relu(g.Conv(x, 32, 3, 3, ph: 1, pw: 1, bias: true)), 2, 2);
        x = g.Relu(g.Conv(x, 64, 3, 3, ph: 1, pw: 1, bias: true));
        return g.Dense(g.GlobalAvgPoolFlatten(x), 10);
    }

    private static Feature TinyNet224(GraphBuilder g, Feature x)
    {
        x = g.Relu(g.Conv(x, 16, 8, 8, stride: 8, bias: true));
        x = g.Relu(g.Conv(x, 32, 3, 3, ph: 1, pw: 1, bias: true));
        return g.Dense(g.GlobalAvgPoolFlatten(x), 10);
    }

    private static Feature MobileNetV1(GraphBuilder g, Feature x)
    {
        const float eps = 1e-3f;
        x = g.ConvBnRelu(x, 32, 3, 3, 2, 1, 1, epsilon: eps);
        var blocks = new (int Out, int Stride)[]
        {
            (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
            (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
        };
        foreach (var (outC, stride) in blocks)
        {
            x = g.ConvBnRelu(x, x.C, 3, 3, stride, 1, 1, groups: x.C, epsilon: eps); // depthwise
            x = g.ConvBnRelu(x, outC, 1, 1, epsilon: eps);                          // pointwise
        }
        return g.Dense(g.GlobalAvgPoolFlatten(x), 1000);
    }

    private static Feature Fire(GraphBuilder g, Feature x, int squeeze, int expand1, int expand3)
    {
        var s = g.Relu(g.Conv(x, squeeze, 1, 1, bias: true));
        var e1 = g.Relu(g.Conv(s, expand1, 1, 1, bias: true));
        var e3 = g.Relu(g.Conv(s, expand3, 3, 3, ph: 1, pw: 1, bias: true));
        return g.Concat(e1, e3);
    }

    private static Feature SqueezeNet(GraphBuilder g, Feature x, bool v11)
    {
        if (!v11)
        {
            x = g.MaxPool(g.Relu(g.Conv(x, 96, 7, 7, 2, bias: true)), 3, 2, ceil: true);
            x = Fire(g, x, 16, 64, 64); x = Fire(g, x, 16, 64, 64); x = Fire(g, x, 32, 128, 128);
            x = g.MaxPool(x, 3, 2, ceil: true);
            x = Fire(g, x, 32, 128, 128); x = Fire(g, x, 48, 192, 192); x = Fire(g, x, 48, 192, 192); x = Fire(g, x, 64, 256, 256);
            x = g.MaxPool(x, 3, 2, ceil: true);
            x = Fire(g, x, 64, 256, 256);
        }
        else
        {
            x = g.MaxPool(g.Relu(g.Conv(x, 64, 3, 3, 2, bias: true)), 3, 2, ceil: true);
            x = Fire(g, x, 16, 64, 64); x = Fire(g, x, 16, 64, 64);
            x = g.MaxPool(x, 3, 2, ceil: true);
            x = Fire(g, x, 32, 128, 128); x = Fire(g, x, 32, 128, 128);
            x = g.MaxPool(x, 3, 2, ceil: true);
            x = Fire(g, x, 48, 192, 192); x = Fire(g, x, 48, 192, 192); x = Fire(g, x, 64, 256, 256); x = Fire(g, x, 64, 256, 256);
        }
        x = g.Relu(g.Conv(x, 1000, 1, 1, bias: true));
        return g.GlobalAvgPoolFlatten(x);
    }

    private static Feature ResNet(GraphBuilder g, Feature x, int[] layers, bool bottleneck)
    {
        x = g.MaxPool(g.ConvBnRelu(x, 64, 7, 7, 2, 3, 3), 3, 2, 1);
        int[] widths = { 64, 128, 256, 512 };
        int expansion = bottleneck ? 4 : 1;
        for (int stage = 0; stage < 4; stage++)
        {
            for (int b = 0; b < layers[stage]; b++)
            {
                int stride = b == 0 && stage > 0 ? 2 : 1;
                int w = widths[stage];
                Feature y;
                if (bottleneck)
                {
                    y = g.ConvBnRelu(x, w, 1, 1);
                    y = g.ConvBnRelu(y, w, 3, 3, stride, 1, 1);
                    y = g.BatchNorm(g.Conv(y, w * 4, 1, 1), gamma: 0.2f);
                }
                else
                {
                    y = g.ConvBnRelu(x, w, 3, 3, stride, 1, 1);
                    y = g.BatchNorm(g.Conv(y, w, 3, 3, 1, 1, 1), gamma: 0.2f);
                }
                var shortcut = stride != 1 || x.C != w * expansion ? g.BatchNorm(g.Conv(x, w * expansion, 1, 1, stride)) : x;
                x = g.Relu(g.Add(y, shortcut));
            }
        }
        return g.Dense(g.GlobalAvgPoolFlatten(x), 1000);
    }

    private static Feature Vgg(GraphBuilder g, Feature x, int[] convsPerStage)
    {
        int[] widths = { 64, 128, 256, 512, 512 };
        for (int s = 0; s < 5; s++)
        {
            for (int i = 0; i < convsPerStage[s]; i++) x = g.Relu(g.Conv(x, widths[s], 3, 3, 1, 1, 1, bias: true));
            x = g.MaxPool(x, 2, 2);
        }
        x = g.Relu(g.Dense(x, 4096));
        x = g.Relu(g.Dense(x, 4096));
        return g.Dense(x, 1000);
    }

    private static Feature DenseNet121(GraphBuilder g, Feature x)
    {
        const int growth = 32, bnSize = 4;
        x = g.MaxPool(g.ConvBnRelu(x, 64, 7, 7, 2, 3, 3), 3, 2, 1);
        int[] blocks = { 6, 12, 24, 16 };
        for (int b = 0; b < blocks.Length; b++)
        {
            var features = new List<Feature> { x };
            for (int l = 0; l < blocks[b]; l++)
            {
                var input = features.Count == 1 ? features[0] : g.Concat(features.ToArray());
                var y = g.Conv(g.Relu(g.BatchNorm(input)), bnSize * growth, 1, 1);
                y = g.Conv(g.Relu(g.BatchNorm(y)), growth, 3, 3, 1, 1, 1);
                features.Add(y);
            }
            x = g.Concat(features.ToArray());
            if (b < blocks.Length - 1)
                x = g.AvgPool(g.Conv(g.Relu(g.BatchNorm(x)), x.C / 2, 1, 1), 2, 2);
        }
        x = g.Relu(g.BatchNorm(x));
        return g.Dense(g.GlobalAvgPoolFlatten(x), 1000);
    }

    private static Feature InceptionV3(GraphBuilder g, Feature x)
    {
        const float eps = 1e-3f;
        Feature C(Feature f, int o, int kh, int kw, int s = 1, int ph = 0, int pw = 0) => g.ConvBnRelu(f, o, kh, kw, s, ph, pw, epsilon: eps);

        x = C(x, 32, 3, 3, 2); x = C(x, 32, 3, 3); x = C(x, 64, 3, 3, 1, 1, 1);
        x = g.MaxPool(x, 3, 2);
        x = C(x, 80, 1, 1); x = C(x, 192, 3, 3);
        x = g.MaxPool(x, 3, 2);

        Feature A(Feature f, int poolFeatures)
        {
            var b1 = C(f, 64, 1, 1);
            var b5 = C(C(f, 48, 1, 1), 64, 5, 5, 1, 2, 2);
            var b3 = C(C(C(f, 64, 1, 1), 96, 3, 3, 1, 1, 1), 96, 3, 3, 1, 1, 1);
            var bp = C(g.AvgPool(f, 3, 1, 1), poolFeatures, 1, 1);
            return g.Concat(b1, b5, b3, bp);
        }
        x = A(x, 32); x = A(x, 64); x = A(x, 64);

        // reduction to 17×17
        {
            var b3 = C(x, 384, 3, 3, 2);
            var bd = C(C(C(x, 64, 1, 1), 96, 3, 3, 1, 1, 1), 96, 3, 3, 2);
            x = g.Concat(b3, bd, g.MaxPool(x, 3, 2));
        }

        Feature Cblock(Feature f, int c7)
        {
            var b1 = C(f, 192, 1, 1);
            var b7 = C(C(C(f, c7, 1, 1), c7, 1, 7, 1, 0, 3), 192, 7, 1, 1, 3, 0);
            var bd = C(f, c7, 1, 1);
            bd = C(bd, c7, 7, 1, 1, 3, 0); bd = C(bd, c7, 1, 7, 1, 0, 3);
            bd = C(bd, c7, 7, 1, 1, 3, 0); bd = C(bd, 192, 1, 7, 1, 0, 3);
            var bp = C(g.AvgPool(f, 3, 1, 1), 192, 1, 1);
            return g.Concat(b1, b7, bd, bp);
        }
        x = Cblock(x, 128); x = Cblock(x, 160); x = Cblock(x, 160); x = Cblock(x, 192);

        // reduction to 8×8
        {
            var b3 = C(C(x, 192, 1, 1), 320, 3, 3, 2);
            var b7 = C(C(C(C(x, 192, 1, 1), 192, 1, 7, 1, 0, 3), 192, 7, 1, 1, 3, 0), 192, 3, 3, 2);
            x = g.Concat(b3, b7, g.MaxPool(x, 3, 2));
        }

        Feature E(Feature f)
        {
            var b1 = C(f, 320, 1, 1);
            var b3 = C(f, 384, 1, 1);
            b3 = g.Concat(C(b3, 384, 1, 3, 1, 0, 1), C(b3, 384, 3, 1, 1, 1, 0));
            var bd = C(C(f, 448, 1, 1), 384, 3, 3, 1, 1, 1);
            bd = g.Concat(C(bd, 384, 1, 3, 1, 0, 1), C(bd, 384, 3, 1, 1, 1, 0));
            var bp = C(g.AvgPool(f, 3, 1, 1), 192, 1, 1);
            return g.Concat(b1, b3, bd, bp);
        }
        x = E(x); x = E(x);
        return g.Dense(g.GlobalAvgPoolFlatten(x), 1000);
    }
}
