namespace HeteroBatch.Engine;

/// <summary>One ErrorId: where it belongs, the kind of failure it is (the first kind is the usual one; a few ids are raised with another kind in one place), and what it means, in one line.</summary>
public sealed record ErrorIdInfo(string Id, string Area, string Meaning, IReadOnlyList<FailureKind> Kinds)
{
    /// <summary>The kind the id is usually raised with; the cmdlets show it as the ErrorCategory of the same name.</summary>
    public FailureKind Kind => Kinds[0];
}

/// <summary>
/// Every ErrorId the engine, Serving, Reporting and the cmdlets can raise: the one catalogue.
/// about_HeteroBatch's ERROR IDS section is generated from it, and a test checks that every id the
/// source raises (<c>new HeteroBatchException("Id", FailureKind.X, ...)</c>) is here with that kind.
/// Throw sites keep their literal ids; add an id here in the same change that first raises it.
/// </summary>
public static class ErrorIds
{
    /// <summary>The areas in the order about_HeteroBatch lists them.</summary>
    public static IReadOnlyList<string> Areas { get; } = Array.AsReadOnly(new[] { "Models", "Units", "Profiles", "Plans", "Inputs", "Running", "File jobs", "Remote", "Serving", "GPU decoding", "Settings", "Charts" });

    /// <summary>The catalogue, by area, then as about_HeteroBatch lists them.</summary>
    public static IReadOnlyList<ErrorIdInfo> All { get; } = Array.AsReadOnly(new[]
    {
        E("ModelNotFound", "Models", "no built-in model of that name, or no model given", FailureKind.ObjectNotFound, FailureKind.InvalidArgument),
        E("ModelFileNotFound", "Models", "the .onnx file named does not exist", FailureKind.ObjectNotFound),
        E("ModelPathIsFolder", "Models", "a folder was given where an .onnx file was expected", FailureKind.InvalidArgument),
        E("ModelInvalid", "Models", "ONNX Runtime could not load the model; its reason follows", FailureKind.InvalidData),
        E("ModelChanged", "Models", "the plan's model file is gone or no longer the one profiled", FailureKind.InvalidData),
        E("BatchAxisUnknown", "Models", "the inputs' first dimensions disagree: no batch axis found", FailureKind.InvalidData),
        E("BatchAxisDropped", "Models", "an output does not keep the batch axis (a reduction over the batch)", FailureKind.InvalidData),
        E("InputShapeDynamic", "Models", "an input has a dynamic dimension other than the batch", FailureKind.InvalidData),
        E("OutputShapeDynamic", "Models", "an output has a dynamic dimension other than the batch", FailureKind.InvalidData),
        E("ElementTypeUnsupported", "Models", "an input or output has an element type not handled", FailureKind.InvalidData),
        E("ElementTypeMismatch", "Models", "a tensor's element type differs from the model's", FailureKind.InvalidData),
        E("PrecisionUnsupported", "Models", "the model has no fp16 form; the reason follows", FailureKind.InvalidData),
        E("SamplesInteract", "Models", "a sample's outputs depend on its batch: run it whole on one unit", FailureKind.InvalidOperation),
        E("ExportFailed", "Models", "the model could not be written", FailureKind.WriteError),
        E("FileExists", "Models", "Export-InferenceModel or Export-PerformanceChart: the file exists and -Force was not given", FailureKind.WriteError),

        E("CpuGroupInvalid", "Units", "a -CpuGroup that is not All, Core, Numa, CoreType or a count", FailureKind.InvalidArgument),
        E("UnitNotFound", "Units", "no unit of that id", FailureKind.ObjectNotFound),
        E("UnitUnavailable", "Units", "the unit is not present here; the reason follows", FailureKind.ResourceUnavailable),
        E("UnitsOverlap", "Units", "CPU units of one plan share processors", FailureKind.InvalidArgument),
        E("UnitKindUnknown", "Units", "no backend runs units of that provider", FailureKind.InvalidData),
        E("SessionFailed", "Units", "the model could not start on the unit; the reason follows", FailureKind.ResourceUnavailable),
        E("OrtPathInvalid", "Units", "HETEROBATCH_ORT_PATH names no usable ONNX Runtime library", FailureKind.InvalidArgument),
        E("OpenVinoDeviceMissing", "Units", "an OpenVINO plugin unit opened without its library named in HETEROBATCH_EP_LIBRARIES", FailureKind.ResourceUnavailable),

        E("ProfileNotFound", "Profiles", "no stored profile for that model and unit", FailureKind.ObjectNotFound),
        E("ProfileEmpty", "Profiles", "a profile with no usable measurements", FailureKind.InvalidData),
        E("ProfileFailed", "Profiles", "no batch size ran on the unit; the reason follows", FailureKind.InvalidOperation),
        E("ProfileCorrupt", "Profiles", "a stored profile did not parse; it was moved aside", FailureKind.InvalidData),
        E("ProfileSchemaNewer", "Profiles", "a profile written by a newer version: left in place, skipped", FailureKind.InvalidData),
        E("ProfileUnreadable", "Profiles", "a stored profile could not be read", FailureKind.ResourceUnavailable),
        E("ProfileModelMismatch", "Profiles", "profiles of different models given together", FailureKind.InvalidArgument),
        E("ProfilePathIsFile", "Profiles", "the profile store path is a file, not a folder", FailureKind.InvalidArgument),
        E("ProfileStoreFailed", "Profiles", "could not write the store; the measurements are still returned", FailureKind.WriteError),
        E("ProfileStoreBusy", "Profiles", "another process held the store's lock too long", FailureKind.ResourceUnavailable),

        E("BatchSizeInvalid", "Plans", "a batch size below one", FailureKind.InvalidArgument),
        E("BatchTooLarge", "Plans", "inputs and outputs would not fit in memory; says how many would", FailureKind.InvalidArgument),
        E("TooManyUnits", "Plans", "-EachSubset over more than 12 units", FailureKind.InvalidArgument),
        E("PlanEmpty", "Plans", "a plan with no shards", FailureKind.InvalidArgument),
        E("PlanInvalid", "Plans", "shards without units, a unit twice, counts below one, gaps or overlaps", FailureKind.InvalidArgument),

        E("InputMissing", "Inputs", "the model needs an input that was not given", FailureKind.InvalidArgument),
        E("InputCountMismatch", "Inputs", "inputs of different sample counts", FailureKind.InvalidArgument),
        E("InputShapeMismatch", "Inputs", "an input's shape differs from the model's", FailureKind.InvalidData),
        E("InputTypeMismatch", "Inputs", "an input's element type differs from the model's", FailureKind.InvalidData),
        E("TensorShapeMismatch", "Inputs", "a tensor holds more or fewer values than its shape needs", FailureKind.InvalidData),
        E("InputFolderEmpty", "Inputs", "no input files in the folder", FailureKind.ObjectNotFound),
        E("InputFileNotFound", "Inputs", "an input file does not exist", FailureKind.ObjectNotFound),
        E("InputFileUnsupported", "Inputs", "an input file that is neither an image nor .npy", FailureKind.InvalidArgument),
        E("InputFilesNeedOneInput", "Inputs", "input files feed models of one input only", FailureKind.InvalidArgument),
        E("ImageUnreadable", "Inputs", "an image that does not decode, or a file cut short", FailureKind.InvalidData),
        E("ImageInputUnsupported", "Inputs", "the model's input is not an image shape of float or uint8", FailureKind.InvalidArgument),
        E("NpyInvalid", "Inputs", "a .npy file whose header or length is unusable", FailureKind.InvalidData),
        E("InputFileUnreadable", "Inputs", "an input file could not be read: also a FIFO or device, or a name that is not UTF-8", FailureKind.InvalidData),
        E("InputUnreadable", "Inputs", "a sample of a job could not be read or decoded", FailureKind.InvalidData),
        E("InputTooMany", "Inputs", "over 2^31 samples", FailureKind.InvalidArgument),
        E("PreprocessingInvalid", "Inputs", "-Mean/-Std not 1 or 3 values, or a -Std not above 0", FailureKind.InvalidArgument),

        E("AllUnitsFailed", "Running", "every unit of the plan failed; nothing more can run", FailureKind.ResourceUnavailable),
        E("SamplesUnfinished", "Running", "a run ended with samples no unit finished", FailureKind.InvalidOperation),
        E("OutputWriteFailed", "Running", "outputs could not be written", FailureKind.WriteError),
        E("InjectedFailure", "Running", "tests only: the failure a test set on the engine context (a unit that throws after N sub-batches of a board)", FailureKind.InvalidOperation),

        E("OutputPathInUse", "File jobs", "another job's outputs, or another process writing there", FailureKind.ResourceUnavailable),
        E("ResumeMismatch", "File jobs", "the folder's job has another model, files or preprocessing, or lost rows it counted as done", FailureKind.InvalidData),
        E("ResumeNeedsInputFiles", "File jobs", "-Resume or -Force without a file job", FailureKind.InvalidArgument),
        E("RepeatNeedsSyntheticInputs", "File jobs", "-Repeat with -InputPath", FailureKind.InvalidArgument),
        E("ShardInvalid", "File jobs", "a -Shard that is not k/N with 0 <= k < N, or more shards than files", FailureKind.InvalidArgument),
        E("ShardUnfinished", "File jobs", "Merge-PartitionedOutput: a folder that is not a finished shard (no job.json, stopped, not run with -Shard, rows missing)", FailureKind.InvalidData),
        E("ShardJobMismatch", "File jobs", "Merge-PartitionedOutput: shards of different jobs (model, files, preprocessing or shard count)", FailureKind.InvalidData),
        E("ShardMissing", "File jobs", "Merge-PartitionedOutput: a shard of the job was not given", FailureKind.InvalidArgument),
        E("ShardDuplicate", "File jobs", "Merge-PartitionedOutput: the same shard was given twice", FailureKind.InvalidArgument),

        E("EndpointInvalid", "Remote", "not an http(s):// or grpc(s):// address", FailureKind.InvalidArgument, FailureKind.InvalidData),
        E("RemoteUnavailable", "Remote", "the server is not ready", FailureKind.ResourceUnavailable),
        E("RemoteModelNotFound", "Remote", "the server has no model of that name", FailureKind.ObjectNotFound),
        E("RemoteUnauthorized", "Remote", "401 or UNAUTHENTICATED: set HETEROBATCH_REMOTE_TOKEN", FailureKind.ResourceUnavailable),
        E("RemoteTensorsUndeclared", "Remote", "the server's model metadata lists no inputs or no outputs: declare them in the model's settings on the server", FailureKind.InvalidData),
        E("RemoteUnitFailed", "Remote", "the server stopped answering or answered an error; its work moves to the other units", FailureKind.ResourceUnavailable),
        E("RemoteDecodeUnavailable", "Remote", "the server serves the model's encoded-image form, but this job cannot send it images (not that form, or other preprocessing); its share is decoded here", FailureKind.InvalidOperation),
        E("ProtocolInvalid", "Remote", "a malformed Open Inference Protocol request or response", FailureKind.InvalidData),
        E("TokenConflict", "Remote", "-Token and -Credential given together", FailureKind.InvalidArgument),
        E("TokenEmpty", "Remote", "an empty bearer token", FailureKind.InvalidArgument),
        E("TokenWithoutEndpoint", "Remote", "-Token or -Credential without -Endpoint", FailureKind.InvalidArgument),
        E("EncodedModelWithoutEndpoint", "Remote", "-EncodedModel without -Endpoint", FailureKind.InvalidArgument),

        E("GrpcServingUnavailable", "Serving", "-Protocol Grpc without the ASP.NET Core runtime beside .NET: serve REST, or install it", FailureKind.ResourceUnavailable),
        E("PortInvalid", "Serving", "a port not between 1 and 65535", FailureKind.InvalidArgument),
        E("ServerStartFailed", "Serving", "the port is taken or the address is not this machine's", FailureKind.ResourceUnavailable, FailureKind.InvalidArgument),
        E("RequestTooLarge", "Serving", "a request over -MaxRequestBytes", FailureKind.LimitExceeded),
        E("ServerNotFound", "Serving", "no server of this session with that id", FailureKind.ObjectNotFound),
        E("ServerBusy", "Serving", "the requests held at once would pass the server's memory budget: try again (503, RESOURCE_EXHAUSTED)", FailureKind.ResourceUnavailable),

        E("GpuDecodeUnavailable", "GPU decoding", "nvJPEG, NPP or the CUDA runtime missing, or no such GPU: the reason follows", FailureKind.ResourceUnavailable),
        E("GpuDecodeInvalid", "GPU decoding", "a batch larger than the decoder's, or a size or batch below one", FailureKind.InvalidArgument),
        E("GpuDecodeFailed", "GPU decoding", "the GPU failed while decoding (out of memory, a lost device)", FailureKind.ResourceUnavailable),
        E("DeviceInputUnsupported", "GPU decoding", "a GPU batch given to a model with another input count, element type or GPU", FailureKind.InvalidArgument),
        E("InputPrefixUnsupported", "GPU decoding", "the model's input is not one float32 image of 3 channels with a known size", FailureKind.InvalidData),

        E("OptionInvalid", "Settings", "Set-HeteroBatchOption: an empty path, a path that is a file, or a negative lock wait", FailureKind.InvalidArgument),
        E("OptionFixedAtImport", "Settings", "a setting that only the environment at Import-Module sets", FailureKind.InvalidOperation),

        E("ChartEmpty", "Charts", "nothing to chart", FailureKind.InvalidArgument),
        E("ChartInputUnsupported", "Charts", "an object that is not a profile, plan or result", FailureKind.InvalidArgument),
        E("ChartFormatUnsupported", "Charts", "a file name not ending in .png or .svg", FailureKind.InvalidArgument),
        E("ChartSizeInvalid", "Charts", "a width or height outside 100 to 10000 pixels", FailureKind.InvalidArgument),
        E("ChartWriteFailed", "Charts", "the chart could not be written", FailureKind.WriteError),
    });

    /// <summary>The entry of an id, or null when the catalogue has none.</summary>
    public static ErrorIdInfo? Find(string id) => All.FirstOrDefault(e => e.Id == id);

    private static ErrorIdInfo E(string id, string area, string meaning, params FailureKind[] kinds) =>
        new(id, area, meaning, Array.AsReadOnly(kinds));
}
