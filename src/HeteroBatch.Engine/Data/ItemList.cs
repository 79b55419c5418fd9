namespace HeteroBatch.Engine.Data;

/// <summary>
/// A list of objects whose text is its items' text joined by "; ", so that where a list lands in
/// one cell (Export-Csv, ConvertTo-Csv, a string) it reads as its items instead of the list's type
/// name. Properties declared as <see cref="List{T}"/> keep an ItemList behind them (see <see cref="Of"/>).
/// </summary>
public sealed class ItemList<T> : List<T>
{
    public ItemList() { }
    public ItemList(IEnumerable<T> items) : base(items) { }

    public override string ToString() => string.Join("; ", this);

    /// <summary><paramref name="items"/> itself where it is already an ItemList, else a copy of it as one (empty for null).</summary>
    public static ItemList<T> Of(List<T>? items) => items as ItemList<T> ?? new ItemList<T>(items ?? Enumerable.Empty<T>());
}
