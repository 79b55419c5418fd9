using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Planning;
using HeteroBatch.Engine.Units;

namespace HeteroBatch.Engine.Tests;

/// <summary>The structure the code promises: one home per kind of unit, layers that depend one way, no state outside a context.</summary>
public class ArchitectureTests
{
    private static string SourceRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !Directory.Exists(Path.Combine(dir.FullName, "src", "HeteroBatch.Engine"))) dir = dir.Parent;
        return Path.Combine(dir?.FullName ?? throw new DirectoryNotFoundException("no src/HeteroBatch.Engine above the test binaries"), "src");
    }

    private static IEnumerable<string> Sources(string project) =>
        Directory.EnumerateFiles(Path.Combine(SourceRoot(), project), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"));

    // a decision on a unit's kind or provider: a member of the enums, or a comparison/switch on the properties
    private static readonly Regex Branch = new(@"\b(ExecutionProvider|UnitKind)\.[A-Z]\w*|\.(Provider|Kind)\s*(==|!=|\bis\b|\bswitch\b)");

    [Fact]
    public void OnlyTheBackendsBranchOnAUnitsProviderOrKind()
    {
        var backends = Path.Combine("Units", "Backends") + Path.DirectorySeparatorChar;
        var offenders = Sources("HeteroBatch.Engine").Concat(Sources("HeteroBatch"))
            .Where(f => !f.Contains(backends))
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (f, i, line)))
            .Where(x => !x.line.TrimStart().StartsWith("//") && Branch.IsMatch(x.line))
            // enum declarations themselves, and a unit's fingerprint text, name the members without deciding anything
            .Where(x => !x.line.Contains("public enum "))
            .Select(x => $"{Path.GetFileName(x.f)}:{x.i + 1}: {x.line.Trim()}")
            .ToList();
        Assert.True(offenders.Count == 0, "branches on provider/kind outside Units/Backends:\n" + string.Join("\n", offenders));
    }

    // lower layers first; a file may use its own layer and those before it
    private static readonly string[] Layers = { "Runtime", "Data", "Sessions", "Models", "Units", "Profiling", "Planning", "Execution", "UseCases" };

    [Fact]
    public void LayersDependOneWay()
    {
        var root = Path.Combine(SourceRoot(), "HeteroBatch.Engine");
        var used = new Regex(@"HeteroBatch\.Engine\.(" + string.Join("|", Layers) + @")\b");
        var violations = new List<string>();
        foreach (var file in Sources("HeteroBatch.Engine"))
        {
            var relative = Path.GetRelativePath(root, file);
            var layer = relative.Split(Path.DirectorySeparatorChar)[0];
            int rank = Array.IndexOf(Layers, layer);
            var text = File.ReadAllText(file);
            if (rank < 0)
            {
                // files at the root (the context, its options, the exception) sit beside Units: the context owns workers and presence
                rank = Array.IndexOf(Layers, "Units");
            }
            foreach (Match m in used.Matches(text))
                if (Array.IndexOf(Layers, m.Groups[1].Value) > rank) violations.Add($"{relative} uses {m.Value}");
            // the context is handed down only to layers that run work
            if (Array.IndexOf(Layers, layer) is >= 0 and < 5 && !relative.StartsWith("Units") && Regex.IsMatch(text, @"\bEngineContext\b"))
                violations.Add($"{relative} uses EngineContext");
        }
        Assert.True(violations.Count == 0, "layer violations:\n" + string.Join("\n", violations.Distinct()));
    }

    // the assemblies above the engine: each uses the engine and nothing else of ours
    private static readonly Assembly Engine = typeof(EngineContext).Assembly;
    private static readonly Assembly Serving = typeof(HeteroBatch.Serving.InferenceServer).Assembly;
    private static readonly Assembly Reporting = typeof(HeteroBatch.Reporting.Charts).Assembly;

    private static string[] References(Assembly a) => a.GetReferencedAssemblies().Select(n => n.Name ?? "").ToArray();

    [Fact]
    public void TheEngineReferencesNeitherAspNetCoreNorScottPlot()
    {
        // what the compiler put into the engine's metadata: a type of either in the engine would show here
        var engine = References(Engine);
        Assert.DoesNotContain(engine, n => n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) || n.StartsWith("Grpc.AspNetCore", StringComparison.Ordinal));
        Assert.DoesNotContain(engine, n => n.StartsWith("ScottPlot", StringComparison.Ordinal));
        Assert.DoesNotContain(engine, n => n.StartsWith("HeteroBatch.", StringComparison.Ordinal));
        // nor does the project ask for them (a reference the code does not use yet would still load them)
        var project = File.ReadAllText(Path.Combine(SourceRoot(), "HeteroBatch.Engine", "HeteroBatch.Engine.csproj"));
        Assert.DoesNotContain("Microsoft.AspNetCore.App", project);
        Assert.DoesNotContain("Grpc.AspNetCore", project);
        Assert.DoesNotContain("ScottPlot", project);
        Assert.DoesNotContain(Sources("HeteroBatch.Engine"), f => Regex.IsMatch(File.ReadAllText(f), @"^namespace HeteroBatch\.(Engine\.)?(Serving|Reporting)\b", RegexOptions.Multiline));
    }

    [Fact]
    public void ServingAndReportingStandOnTheEngineAloneAndOwnTheirLibraries()
    {
        var serving = References(Serving);
        var reporting = References(Reporting);
        Assert.Contains("HeteroBatch.Engine", serving);
        Assert.Contains("HeteroBatch.Engine", reporting);
        Assert.Contains(serving, n => n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
        Assert.Contains(reporting, n => n.StartsWith("ScottPlot", StringComparison.Ordinal));
        // neither leans on the other, nor on the module (which would bring PowerShell types below the cmdlets)
        Assert.DoesNotContain("HeteroBatch.Reporting", serving);
        Assert.DoesNotContain("HeteroBatch.Serving", reporting);
        Assert.DoesNotContain(serving.Concat(reporting), n => n is "HeteroBatch" || n.StartsWith("System.Management.Automation", StringComparison.Ordinal));
        Assert.DoesNotContain(serving, n => n.StartsWith("ScottPlot", StringComparison.Ordinal));
        Assert.DoesNotContain(reporting, n => n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
    }

    [Fact]
    public void TheEngineKeepsNoMutableStaticState()
    {
        // process-wide by nature, each for a reason: ONNX Runtime allows one environment per process
        // (and the lock that makes it once); the native resolver is registered once per process;
        // the model cache is one folder on disk, written under one lock; the built-in networks'
        // definitions and descriptions (and the probe model) are computed once and never written.
        var allowed = new HashSet<string>
        {
            "OrtRuntime._env", "OrtRuntime.Gate", "NativeLibraries._registered", "ModelCatalog.BuildGate",
            "ModelZoo.Definitions", "ModelZoo.Catalog", "ProbeModel.Cached",
            // where ASP.NET Core's assemblies load from (for serving gRPC): one process, one runtime, set once
            "SharedFrameworks._aspNetCore",
            // plugin execution-provider libraries register into ONNX Runtime's one environment, once each
            // (a second registration of a name fails): the record of which are registered, and its lock
            "PluginProviders.Registered", "PluginProviders.Gate",
            // each decoding thread's own scratch buffers and tap tables (thread-static: never shared between threads)
            "ImageDecoder._current",
            // the system's TurboJPEG library, looked up once per process (like the native resolver)
            "TurboJpeg.Loaded",
        };
        var found = new List<string>();
        foreach (var type in typeof(EngineContext).Assembly.GetTypes())
        {
            if (type.IsDefined(typeof(CompilerGeneratedAttribute)) || type.Name.StartsWith('<')) continue;
            // code generated from Protos/open_inference.proto: message parsers, descriptors and gRPC method descriptors, made once, never written
            if (type.Namespace == "HeteroBatch.Engine.Sessions.Grpc") continue;
            foreach (var field in type.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (field.IsLiteral || field.Name.Contains('<')) continue;
                var name = $"{type.Name}.{field.Name}";
                if (allowed.Contains(name)) continue;
                if (field.IsInitOnly && Immutable(field.FieldType)) continue;
                found.Add($"{name} ({field.FieldType.Name}{(field.IsInitOnly ? ", readonly" : "")})");
            }
        }
        Assert.True(found.Count == 0, "static state outside a context:\n" + string.Join("\n", found));
    }

    /// <summary>Types whose instances cannot change once made (or stateless services such as the backends).</summary>
    private static bool Immutable(Type t) =>
        t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(TimeSpan)
        || t.Namespace == "HeteroBatch.Engine.Units.Backends" // stateless backends
        || t == typeof(System.Text.Json.JsonSerializerOptions) // frozen after first use
        || (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(System.Collections.Frozen.FrozenSet<>) && Immutable(t.GetGenericArguments()[0]))
        || (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Lazy<>) && Immutable(t.GetGenericArguments()[0]))
        || (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(IReadOnlyList<>) && Immutable(t.GetGenericArguments()[0]))
        || (t.IsValueType && t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).All(f => f.IsInitOnly && Immutable(f.FieldType)));

    [Fact]
    public void TwoContextsSideBySideHaveTheirOwnWorkersAndEndThem()
    {
        var unit = TestModels.TwoCpuUnits()[0];
        var model = TestModels.Tiny;
        var a = new EngineContext();
        var b = new EngineContext();
        var wa = a.Workers.For(unit);
        var wb = b.Workers.For(unit);
        Assert.NotSame(wa, wb);
        Assert.Same(wa, a.Workers.For(unit));
        var plan = PlanLayout.Manual("tinynet", model.Sha256, new[] { new ShareSpec(unit, 5, 5, 1) });
        var ra = PartitionedRunner.Run(a, plan, model, null, new RunSettings { Seed = 4 });
        var rb = PartitionedRunner.Run(b, plan, model, null, new RunSettings { Seed = 4 });
        Assert.Equal(ra.OutputOf(3), rb.OutputOf(3));
        a.Dispose();
        // a disposed context's workers take no more work; the other context still runs
        Assert.Throws<ObjectDisposedException>(() => a.Workers.For(unit));
        Assert.ThrowsAny<Exception>(() => wa.Invoke(() => 1).GetAwaiter().GetResult());
        Assert.True(PartitionedRunner.Run(b, plan, model, null, new RunSettings()).Complete);
        b.Dispose();
    }
}
