using System.Text;

namespace SharpTune.Files;

/// <summary>
/// Files that are whole or absent: the content goes to a hidden temp file in the same folder (same file system, so
/// the rename is atomic), is flushed to disk, and is renamed over the target. A reader sees the old content or the
/// new, never a mix; a write that throws leaves the old file as it was and no temp file behind.
/// </summary>
public static class AtomicFile
{
    private static readonly Encoding Utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);

    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = TempName.Beside(full);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { /* the original error matters more */ }
            throw;
        }
    }

    /// <summary>Text as UTF-8 without a byte-order mark.</summary>
    public static void WriteText(string path, string text) => Write(path, stream => stream.Write(Utf8.GetBytes(text)));

    /// <summary>Text written line by line (large exports), UTF-8 without a byte-order mark.</summary>
    public static void WriteLines(string path, Action<TextWriter> write) => Write(path, stream =>
    {
        using var writer = new StreamWriter(stream, Utf8, bufferSize: 1 << 16, leaveOpen: true);
        write(writer);
    });

    /// <summary>
    /// Puts a file that was completed under another name in the same folder (a finished download) in place: flushed
    /// to disk, then renamed over <paramref name="path"/>.
    /// </summary>
    public static void Publish(string finished, string path)
    {
        using (var stream = new FileStream(finished, FileMode.Open, FileAccess.ReadWrite, FileShare.None)) stream.Flush(flushToDisk: true);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.Move(finished, path, overwrite: true);
    }
}
