using System.Text.Json.Nodes;
using HeteroBatch.Engine.Data;
using HeteroBatch.Engine.Sessions;

namespace HeteroBatch.Serving;

/// <summary>
/// The two Triton extensions whose answers this server has at hand, in Triton's JSON: the model
/// configuration (GET /v2/models/{m}/config: the tensors as config.pbtxt writes them, and the most
/// samples a request may hold) and the statistics (GET /v2/models/{m}/stats, /v2/models/stats:
/// requests and samples answered, failures, time). The extensions it does not offer are named in
/// a JSON error where their endpoints are asked for.
/// </summary>
internal static class ModelExtensions
{
    public const string Configuration = "model_configuration";
    public const string Statistics = "statistics";

    /// <summary>What GET /v2 lists.</summary>
    public static readonly string[] Offered = { InferenceProtocol.BinaryExtension, Configuration, Statistics };

    /// <summary>The model configuration: name, platform, max_batch_size (the samples that fit in the largest request taken, as binary data), input and output (per-sample dims).</summary>
    public static JsonObject Config(InferenceServer server)
    {
        long sampleBytes = server.Signature.Inputs.Sum(t => t.SampleShape.Aggregate(1L, (a, d) => a * Math.Max(1, d)) * TensorBatch.ElementSize(t.ElementType));
        long fit = Math.Clamp(server.MaxRequestBytes / Math.Max(1, sampleBytes), 1, int.MaxValue);
        JsonObject Tensor(TensorSpec t) => new()
        {
            ["name"] = t.Name,
            ["data_type"] = "TYPE_" + InferenceProtocol.DataTypeOf(t.ElementType),
            ["dims"] = new JsonArray(t.SampleShape.Select(d => (JsonNode?)d).ToArray()),
        };
        return new JsonObject
        {
            ["name"] = server.Model,
            ["platform"] = "onnxruntime_onnx",
            ["backend"] = "onnxruntime",
            ["version_policy"] = new JsonObject { ["latest"] = new JsonObject { ["num_versions"] = 1 } },
            ["max_batch_size"] = fit,
            ["input"] = new JsonArray(server.Signature.Inputs.Select(t => (JsonNode?)Tensor(t)).ToArray()),
            ["output"] = new JsonArray(server.Signature.Outputs.Select(t => (JsonNode?)Tensor(t)).ToArray()),
        };
    }

    /// <summary>The statistics of the one model, as Triton writes them (times in nanoseconds, last_inference in milliseconds since 1970; 0 before the first).</summary>
    public static JsonObject Stats(InferenceServer server)
    {
        var (answered, answeredNs, computeNs, lastMs) = server.Answered;
        JsonObject Duration(long count, long ns) => new() { ["count"] = count, ["ns"] = ns };
        return new JsonObject
        {
            ["model_stats"] = new JsonArray(new JsonObject
            {
                ["name"] = server.Model,
                ["version"] = "1",
                ["last_inference"] = lastMs,
                ["inference_count"] = server.Samples,
                ["execution_count"] = server.Requests,
                ["inference_stats"] = new JsonObject
                {
                    ["success"] = Duration(answered, answeredNs),
                    ["fail"] = Duration(server.Failures, 0),
                    ["compute_infer"] = Duration(answered, computeNs),
                },
            }),
        };
    }

    /// <summary>The extension an endpoint this server does not answer belongs to, where it is one of the protocol's or Triton's; null otherwise.</summary>
    public static string? MissingExtension(string path, string model)
    {
        if (path.StartsWith("/v2/repository", StringComparison.Ordinal)) return "model_repository";
        if (path.StartsWith("/v2/systemsharedmemory", StringComparison.Ordinal)) return "system_shared_memory";
        if (path.StartsWith("/v2/cudasharedmemory", StringComparison.Ordinal)) return "cuda_shared_memory";
        if (path.StartsWith("/v2/logging", StringComparison.Ordinal)) return "logging";
        if (path == "/v2/trace/setting" || path.EndsWith("/trace/setting", StringComparison.Ordinal)) return "trace";
        if (path.StartsWith($"/v2/models/{model}/generate", StringComparison.Ordinal)) return "generate";
        return null;
    }
}
