namespace HeteroBatch.Engine.Data;

/// <summary>
/// A list of plain values that prints as them ("3 7 1"), so that Export-Csv and string
/// conversion show the values, not a type name; serializers still see an array.
/// </summary>
public sealed class ValueList<T> : List<T>
{
    public ValueList() { }
    public ValueList(IEnumerable<T> values) : base(values) { }

    public override string ToString() => string.Join(" ", this);

    public static implicit operator ValueList<T>(T[] values) => new(values);
}
