namespace SharpTune.Data;

/// <summary>
/// The unread bytes of a stream in one array that slides forward and doubles up to a cap, so that a whole record (a
/// line, a JSON array element) can be found in it and handed out without a copy.
/// </summary>
internal sealed class ReadWindow(Stream stream, int maxBytes)
{
    public byte[] Bytes { get; private set; } = new byte[1 << 16];

    /// <summary>The first unread byte of <see cref="Bytes"/>.</summary>
    public int Start { get; set; }

    /// <summary>The end of the bytes read so far.</summary>
    public int End { get; private set; }

    /// <summary>The stream offset of Bytes[0].</summary>
    public long Offset { get; private set; }

    /// <summary>The stream has no more bytes.</summary>
    public bool AtEnd { get; private set; }

    public ReadOnlySpan<byte> Unread => Bytes.AsSpan(Start, End - Start);

    /// <summary>Moves the unread bytes to the front, grows the array when they fill it, and reads more (AtEnd when none came).</summary>
    /// <param name="tooLarge">the message when the unread bytes already fill the cap: the record is larger than allowed.</param>
    public void Fill(Func<string> tooLarge)
    {
        if (Start > 0)
        {
            Buffer.BlockCopy(Bytes, Start, Bytes, 0, End - Start);
            Offset += Start;
            End -= Start;
            Start = 0;
        }
        if (End == Bytes.Length)
        {
            if (Bytes.Length >= maxBytes) throw new InvalidInputException(tooLarge());
            var grown = Bytes;
            Array.Resize(ref grown, Math.Min(grown.Length * 2, maxBytes));
            Bytes = grown;
        }
        int read = stream.Read(Bytes, End, Bytes.Length - End);
        if (read == 0) AtEnd = true;
        End += read;
    }
}
