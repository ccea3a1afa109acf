using System.Diagnostics;

namespace SharpTune.Hub;

/// <summary>One progress display for a whole download (all files together); called from several threads.</summary>
public interface IDownloadProgress
{
    /// <summary>Before the first byte: how many files and bytes will be fetched.</summary>
    void Start(string what, int files, long bytes);
    /// <summary>Bytes written since the last call (from any file).</summary>
    void Advance(long bytes);
    void Finish();
}

/// <summary>Plain lines for logs and redirected output: one when the download starts, one when it ends (bytes, rate).</summary>
public sealed class TextDownloadProgress(TextWriter output) : IDownloadProgress
{
    private readonly Stopwatch clock = new();
    private long done;
    private string label = "";

    public void Start(string what, int files, long bytes)
    {
        label = what;
        clock.Restart();
        lock (output) output.WriteLine($"downloading {what}: {files} file(s), {Bytes(bytes)}");
    }

    public void Advance(long bytes) => Interlocked.Add(ref done, bytes);

    public void Finish()
    {
        double seconds = Math.Max(clock.Elapsed.TotalSeconds, 1e-3);
        lock (output) output.WriteLine($"downloaded {label}: {Bytes(done)} in {seconds:F1} s ({Bytes((long)(done / seconds))}/s)");
    }

    public static string Bytes(long n) => n switch
    {
        < 1024 => $"{n} B",
        < 1 << 20 => $"{n / 1024.0:F1} KB",
        < 1 << 30 => $"{n / 1048576.0:F1} MB",
        _ => $"{n / 1073741824.0:F2} GB",
    };
}
