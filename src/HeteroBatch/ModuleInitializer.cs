using System.Management.Automation;
using HeteroBatch.Engine.Execution;
using HeteroBatch.Engine.Runtime;

namespace HeteroBatch;

/// <summary>On import: telemetry off and ONNX Runtime started quietly, before any cmdlet runs. On removal: workers end.</summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    public void OnImport() => OrtRuntime.Initialize();

    public void OnRemove(PSModuleInfo module) => WorkerPool.Clear();
}
