namespace HeteroBatch.Engine;

/// <summary>What kind of failure an engine error is; the cmdlets map it to an ErrorCategory.</summary>
/// <summary>What kind of failure an ErrorId is; the cmdlets show it as the ErrorCategory of the same name, servers as their protocol's status (LimitExceeded: 413, RESOURCE_EXHAUSTED).</summary>
public enum FailureKind { InvalidArgument, ObjectNotFound, InvalidData, ResourceUnavailable, OperationStopped, InvalidOperation, WriteError, LimitExceeded }

/// <summary>An engine failure with a stable ErrorId that scripts and tests can rely on.</summary>
public class HeteroBatchException : Exception
{
    public string ErrorId { get; }
    public FailureKind Kind { get; }
    public object? Target { get; }
    /// <summary>True when nothing more of the command can be done (every unit failed, outputs could not be written); false for a failure of one item.</summary>
    public bool StopsCommand { get; init; }

    public HeteroBatchException(string errorId, FailureKind kind, string message, object? target = null, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Kind = kind;
        Target = target;
    }
}
