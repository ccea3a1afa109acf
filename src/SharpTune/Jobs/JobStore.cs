using Microsoft.Data.Sqlite;

namespace SharpTune.Jobs;

/// <summary>
/// The durable queue: one SQLite file (WAL journal, synchronous=FULL so a committed job survives power loss as well as
/// kill -9). Every state change is one conditional UPDATE, so two callers racing (a cancel and the child finishing) cannot
/// both win. One connection guarded by a lock: the service is one process and the statements are tiny.
/// </summary>
public sealed class JobStore : IDisposable
{
    private readonly SqliteConnection db;
    private readonly Lock gate = new();

    public JobStore(string path)
    {
        db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        db.Open();
        Execute("PRAGMA journal_mode=WAL;");
        Execute("PRAGMA synchronous=FULL;");
        Execute("PRAGMA busy_timeout=5000;");
        Execute("""
            CREATE TABLE IF NOT EXISTS jobs (
                id TEXT PRIMARY KEY, seq INTEGER NOT NULL, user_id TEXT NOT NULL, run_id TEXT NOT NULL, model_id TEXT,
                state TEXT NOT NULL, job_dir TEXT NOT NULL, created_at INTEGER NOT NULL, queued_at INTEGER NOT NULL,
                started_at INTEGER, finished_at INTEGER, error TEXT, output_json TEXT, pid INTEGER,
                resumable INTEGER NOT NULL DEFAULT 0, resume_next INTEGER NOT NULL DEFAULT 0, execution_timeout_ms INTEGER,
                attempts INTEGER NOT NULL DEFAULT 0, warnings_json TEXT NOT NULL DEFAULT '[]', stop_as TEXT,
                UNIQUE (user_id, run_id));
            CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, seq);
            """);
    }

    public string JournalMode => (string)Scalar("PRAGMA journal_mode;")!;

    /// <summary>Records a new IN_QUEUE job; false when the user already has a job with that run_id.</summary>
    public bool TryInsert(JobRecord job)
    {
        lock (gate)
        {
            using var cmd = Command("""
                INSERT INTO jobs (id, seq, user_id, run_id, model_id, state, job_dir, created_at, queued_at, execution_timeout_ms, warnings_json)
                VALUES ($id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), $user, $run, $model, $state, $dir, $now, $now, $timeout, $warnings)
                ON CONFLICT DO NOTHING;
                """);
            Bind(cmd, ("$id", job.Id), ("$user", job.UserId), ("$run", job.RunId), ("$model", job.ModelId), ("$state", JobStates.Name(JobState.InQueue)),
                ("$dir", job.JobDir), ("$now", job.CreatedAt), ("$timeout", job.ExecutionTimeoutMs), ("$warnings", job.WarningsJson));
            return cmd.ExecuteNonQuery() == 1;
        }
    }

    public JobRecord? Get(string id) => Query("SELECT * FROM jobs WHERE id = $id", ("$id", id)).FirstOrDefault();

    /// <summary>Jobs of one user (null = all), newest first.</summary>
    public IReadOnlyList<JobRecord> List(string? userId) => userId is null
        ? Query("SELECT * FROM jobs ORDER BY seq DESC")
        : Query("SELECT * FROM jobs WHERE user_id = $user ORDER BY seq DESC", ("$user", userId));

    public IReadOnlyDictionary<JobState, int> CountByState()
    {
        var counts = Enum.GetValues<JobState>().ToDictionary(s => s, _ => 0);
        lock (gate)
        {
            using var cmd = Command("SELECT state, COUNT(*) FROM jobs GROUP BY state");
            using var reader = cmd.ExecuteReader();
            while (reader.Read()) counts[JobStates.Parse(reader.GetString(0))] = reader.GetInt32(1);
        }
        return counts;
    }

    /// <summary>Moves the oldest queued job to IN_PROGRESS and returns it (null when none waits).</summary>
    public JobRecord? StartNext(long now)
    {
        string id;
        lock (gate)
        {
            using var tx = db.BeginTransaction();
            using var pick = Command("SELECT id FROM jobs WHERE state = 'IN_QUEUE' ORDER BY seq LIMIT 1", tx);
            if (pick.ExecuteScalar() is not string picked) return null;
            id = picked;
            using var update = Command("""
                UPDATE jobs SET state = 'IN_PROGRESS', started_at = $now, finished_at = NULL, error = NULL, output_json = NULL,
                    attempts = attempts + 1, stop_as = NULL, pid = NULL WHERE id = $id AND state = 'IN_QUEUE'
                """, tx);
            Bind(update, ("$id", id), ("$now", now));
            update.ExecuteNonQuery();
            tx.Commit();
        }
        return Get(id);
    }

    public void SetPid(string id, int pid) => Update("UPDATE jobs SET pid = $pid WHERE id = $id", ("$id", id), ("$pid", pid));

    /// <summary>Ends a running job; false when it was not IN_PROGRESS any more.</summary>
    public bool Finish(string id, JobState state, long now, string? error, string? outputJson, bool resumable) =>
        Update("""
            UPDATE jobs SET state = $state, finished_at = $now, error = $error, output_json = $output, resumable = $resumable,
                resume_next = 0, pid = NULL WHERE id = $id AND state = 'IN_PROGRESS'
            """, ("$id", id), ("$state", JobStates.Name(state)), ("$now", now), ("$error", error), ("$output", outputJson), ("$resumable", resumable ? 1 : 0)) == 1;

    /// <summary>Cancels a queued job at once; false when it is not queued.</summary>
    public bool CancelQueued(string id, long now) =>
        Update("UPDATE jobs SET state = 'CANCELLED', finished_at = $now WHERE id = $id AND state = 'IN_QUEUE'", ("$id", id), ("$now", now)) == 1;

    /// <summary>Marks a running job to end as <paramref name="stopAs"/> (CANCELLED or TIMED_OUT) once its child has stopped.</summary>
    public bool RequestStop(string id, JobState stopAs) =>
        Update("UPDATE jobs SET stop_as = $stop WHERE id = $id AND state = 'IN_PROGRESS' AND stop_as IS NULL", ("$id", id), ("$stop", JobStates.Name(stopAs))) == 1;

    /// <summary>Puts a failed, cancelled or timed-out job back at the end of the queue; false for any other state.</summary>
    public bool Requeue(string id, long now, bool resume) =>
        Update("""
            UPDATE jobs SET state = 'IN_QUEUE', seq = (SELECT MAX(seq) + 1 FROM jobs), queued_at = $now, started_at = NULL, finished_at = NULL,
                error = NULL, output_json = NULL, stop_as = NULL, resume_next = $resume WHERE id = $id AND state IN ('FAILED', 'CANCELLED', 'TIMED_OUT')
            """, ("$id", id), ("$now", now), ("$resume", resume ? 1 : 0)) == 1;

    /// <summary>After a crash: every job left IN_PROGRESS, for the service to fail (and its child, if alive, to stop).</summary>
    public IReadOnlyList<JobRecord> Running() => Query("SELECT * FROM jobs WHERE state = 'IN_PROGRESS' ORDER BY seq");

    public void Dispose() => db.Dispose();

    private int Update(string sql, params (string Name, object? Value)[] values)
    {
        lock (gate)
        {
            using var cmd = Command(sql);
            Bind(cmd, values);
            return cmd.ExecuteNonQuery();
        }
    }

    private void Execute(string sql) => Update(sql);

    private object? Scalar(string sql, params (string Name, object? Value)[] values)
    {
        lock (gate)
        {
            using var cmd = Command(sql);
            Bind(cmd, values);
            return cmd.ExecuteScalar();
        }
    }

    private List<JobRecord> Query(string sql, params (string Name, object? Value)[] values)
    {
        lock (gate)
        {
            using var cmd = Command(sql);
            Bind(cmd, values);
            using var r = cmd.ExecuteReader();
            var jobs = new List<JobRecord>();
            while (r.Read())
            {
                string? Text(string column) => r[column] is string s ? s : null;
                long? Long(string column) => r[column] is long l ? l : null;
                jobs.Add(new JobRecord
                {
                    Id = (string)r["id"], Seq = (long)r["seq"], UserId = (string)r["user_id"], RunId = (string)r["run_id"], ModelId = Text("model_id"),
                    State = JobStates.Parse((string)r["state"]), JobDir = (string)r["job_dir"], CreatedAt = (long)r["created_at"],
                    QueuedAt = (long)r["queued_at"], StartedAt = Long("started_at"), FinishedAt = Long("finished_at"), Error = Text("error"),
                    OutputJson = Text("output_json"), Pid = Long("pid") is { } pid ? (int)pid : null, Resumable = (long)r["resumable"] != 0,
                    ResumeNext = (long)r["resume_next"] != 0, ExecutionTimeoutMs = Long("execution_timeout_ms"), Attempts = (int)(long)r["attempts"],
                    WarningsJson = (string)r["warnings_json"], StopAs = Text("stop_as") is { } stop ? JobStates.Parse(stop) : null,
                });
            }
            return jobs;
        }
    }

    private SqliteCommand Command(string sql, SqliteTransaction? tx = null)
    {
        var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        return cmd;
    }

    private static void Bind(SqliteCommand cmd, params (string Name, object? Value)[] values)
    {
        foreach (var (name, value) in values) cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
    }
}
