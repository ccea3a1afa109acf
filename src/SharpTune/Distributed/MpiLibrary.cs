using System.Runtime.InteropServices;

namespace SharpTune.Distributed;

/// <summary>
/// The MPI C API through function pointers from libmpi (OpenMPI's libmpi.so.40 or MPICH's libmpi.so.12; SHARPTUNE_LIBMPI
/// names another). The two differ in how handles are spelled: OpenMPI's MPI_Comm/MPI_Datatype/MPI_Op are addresses of
/// exported objects (ompi_mpi_comm_world …) and MPI_IN_PLACE is (void*)1; MPICH's are int constants from mpi.h and
/// MPI_IN_PLACE is (void*)-1. Handles are kept as nint here; the MPICH calls narrow them to int.
/// </summary>
internal sealed unsafe class MpiLibrary
{
    private const int RtldNow = 2, RtldGlobal = 0x100;
    private static readonly string[] Candidates = ["libmpi.so.40", "libmpi.so.12", "libmpi.so"];

    public bool IsOpenMpi { get; }
    public string Path { get; }
    public nint CommWorld { get; }
    public nint InPlace { get; }
    private readonly nint bytes, float32, float64, int64, opSum, opMax, opMin;

    // OpenMPI: handles are pointers.
    private readonly delegate* unmanaged<nint, nint, int> init;
    private readonly delegate* unmanaged<int*, int> initialized;
    private readonly delegate* unmanaged<int> finalize;
    private readonly delegate* unmanaged<int*, int> finalized;
    private readonly nint commRank, commSize, allreduce, reduceScatter, allgatherv, bcast, barrier, abort;

    private MpiLibrary(string path, nint handle)
    {
        Path = path;
        nint Export(string name) => NativeLibrary.TryGetExport(handle, name, out var address) ? address
            : throw new InvalidOperationException($"{path}: no export {name}; not an MPI library");
        IsOpenMpi = NativeLibrary.TryGetExport(handle, "ompi_mpi_comm_world", out var world);
        if (IsOpenMpi)
        {
            CommWorld = world;
            InPlace = 1;
            bytes = Export("ompi_mpi_byte");
            float32 = Export("ompi_mpi_float");
            float64 = Export("ompi_mpi_double");
            int64 = Export("ompi_mpi_long_long_int");
            opSum = Export("ompi_mpi_op_sum");
            opMax = Export("ompi_mpi_op_max");
            opMin = Export("ompi_mpi_op_min");
        }
        else
        {
            // mpi.h of MPICH (and its derivatives: Intel MPI, MVAPICH, Cray MPICH).
            CommWorld = 0x44000000;
            InPlace = -1;
            bytes = 0x4c00010d;
            float32 = 0x4c00040a;
            float64 = 0x4c00080b;
            int64 = 0x4c000809;
            opMax = 0x58000001;
            opMin = 0x58000002;
            opSum = 0x58000003;
        }
        init = (delegate* unmanaged<nint, nint, int>)Export("MPI_Init");
        initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        commRank = Export("MPI_Comm_rank");
        commSize = Export("MPI_Comm_size");
        allreduce = Export("MPI_Allreduce");
        reduceScatter = Export("MPI_Reduce_scatter");
        allgatherv = Export("MPI_Allgatherv");
        bcast = Export("MPI_Bcast");
        barrier = Export("MPI_Barrier");
        abort = Export("MPI_Abort");
    }

    /// <summary>Loads libmpi, or returns null with the reason (no MPI installed).</summary>
    public static MpiLibrary? TryLoad(out string reason)
    {
        var names = Environment.GetEnvironmentVariable("SHARPTUNE_LIBMPI") is { Length: > 0 } chosen ? [chosen] : Candidates;
        foreach (var name in names)
        {
            // RTLD_GLOBAL: OpenMPI's plugins (mca_*.so) resolve libmpi's own symbols; NativeLibrary.Load alone opens it locally.
            if (Dlopen(name, RtldNow | RtldGlobal) == 0) continue;
            if (!NativeLibrary.TryLoad(name, out var handle)) continue;
            reason = "";
            return new MpiLibrary(name, handle);
        }
        reason = $"no MPI library found (tried {string.Join(", ", names)}); install OpenMPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) or MPICH, or set SHARPTUNE_LIBMPI";
        return null;
    }

    [DllImport("libc", EntryPoint = "dlopen")]
    private static extern nint Dlopen([MarshalAs(UnmanagedType.LPStr)] string file, int mode);

    public nint TypeHandle(ElementType type) => type switch
    {
        ElementType.Float32 => float32,
        ElementType.Float64 => float64,
        ElementType.Int64 => int64,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    public nint OpHandle(ReduceOp op) => op switch
    {
        ReduceOp.Sum => opSum,
        ReduceOp.Max => opMax,
        ReduceOp.Min => opMin,
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    public int Init() => init(0, 0);

    public bool Initialized
    {
        get { int flag; initialized(&flag); return flag != 0; }
    }

    public bool Finalized
    {
        get { int flag; finalized(&flag); return flag != 0; }
    }

    public int Finalize() => finalize();

    public int CommRank(nint comm, out int rank)
    {
        int value, rc;
        rc = IsOpenMpi ? ((delegate* unmanaged<nint, int*, int>)commRank)(comm, &value) : ((delegate* unmanaged<int, int*, int>)commRank)((int)comm, &value);
        rank = value;
        return rc;
    }

    public int CommSize(nint comm, out int size)
    {
        int value, rc;
        rc = IsOpenMpi ? ((delegate* unmanaged<nint, int*, int>)commSize)(comm, &value) : ((delegate* unmanaged<int, int*, int>)commSize)((int)comm, &value);
        size = value;
        return rc;
    }

    public int Allreduce(nint send, nint receive, int count, nint type, nint op, nint comm) => IsOpenMpi
        ? ((delegate* unmanaged<nint, nint, int, nint, nint, nint, int>)allreduce)(send, receive, count, type, op, comm)
        : ((delegate* unmanaged<nint, nint, int, int, int, int, int>)allreduce)(send, receive, count, (int)type, (int)op, (int)comm);

    public int ReduceScatter(nint send, nint receive, int* counts, nint type, nint op, nint comm) => IsOpenMpi
        ? ((delegate* unmanaged<nint, nint, int*, nint, nint, nint, int>)reduceScatter)(send, receive, counts, type, op, comm)
        : ((delegate* unmanaged<nint, nint, int*, int, int, int, int>)reduceScatter)(send, receive, counts, (int)type, (int)op, (int)comm);

    public int Allgatherv(nint send, int sendCount, nint sendType, nint receive, int* counts, int* displacements, nint receiveType, nint comm) => IsOpenMpi
        ? ((delegate* unmanaged<nint, int, nint, nint, int*, int*, nint, nint, int>)allgatherv)(send, sendCount, sendType, receive, counts, displacements, receiveType, comm)
        : ((delegate* unmanaged<nint, int, int, nint, int*, int*, int, int, int>)allgatherv)(send, sendCount, (int)sendType, receive, counts, displacements, (int)receiveType, (int)comm);

    public int Bcast(nint buffer, int count, nint type, int root, nint comm) => IsOpenMpi
        ? ((delegate* unmanaged<nint, int, nint, int, nint, int>)bcast)(buffer, count, type, root, comm)
        : ((delegate* unmanaged<nint, int, int, int, int, int>)bcast)(buffer, count, (int)type, root, (int)comm);

    /// <summary>MPI_BYTE.</summary>
    public nint ByteType => bytes;

    public int Barrier(nint comm) => IsOpenMpi
        ? ((delegate* unmanaged<nint, int>)barrier)(comm)
        : ((delegate* unmanaged<int, int>)barrier)((int)comm);

    public int Abort(nint comm, int code) => IsOpenMpi
        ? ((delegate* unmanaged<nint, int, int>)abort)(comm, code)
        : ((delegate* unmanaged<int, int, int>)abort)((int)comm, code);
}
