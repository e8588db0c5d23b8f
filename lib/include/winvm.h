/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libwinvm: the Win32 virtual-memory API on Linux, backed by /dev/winvm.
 *
 * Types, constants and prototypes carry their Windows names and values so
 * that Win32 source using them compiles unchanged. Windows is LLP64: DWORD
 * and LONG are 32 bits here too; pointer-sized integers are *_PTR and
 * SIZE_T.
 */
#ifndef LIBWINVM_WINVM_H
#define LIBWINVM_WINVM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef WINAPI
#define WINAPI
#endif
#ifndef CALLBACK
#define CALLBACK
#endif
#ifndef WINBASEAPI
#define WINBASEAPI __attribute__((visibility("default")))
#endif

typedef uint8_t BYTE, *PBYTE, *LPBYTE;
typedef uint16_t WORD, *PWORD, *LPWORD;
typedef uint32_t DWORD, *PDWORD, *LPDWORD;
typedef int32_t LONG, *PLONG;
typedef uint32_t ULONG, *PULONG;
typedef int64_t LONGLONG;
typedef uint64_t ULONGLONG, DWORD64;
typedef int BOOL, *PBOOL, *LPBOOL;
typedef uint8_t BOOLEAN;
typedef char CHAR;
typedef void VOID, *PVOID, *LPVOID;
typedef const void *LPCVOID;
typedef void *HANDLE;
typedef uintptr_t ULONG_PTR, *PULONG_PTR, DWORD_PTR, *PDWORD_PTR;
typedef intptr_t LONG_PTR, INT_PTR;
typedef uintptr_t UINT_PTR;
typedef const CHAR *LPCSTR;
typedef uint16_t WCHAR;		/* UTF-16, as on Windows */
typedef const WCHAR *LPCWSTR;
typedef INT_PTR (WINAPI *FARPROC)(void);
typedef size_t SIZE_T, *PSIZE_T;
typedef LONG NTSTATUS;
typedef unsigned int UINT;
typedef uint64_t DWORDLONG, *PDWORDLONG, *PULONGLONG;
typedef HANDLE *PHANDLE;
typedef HANDLE HGLOBAL, HLOCAL;

#ifndef TRUE
#define TRUE	1
#endif
#ifndef FALSE
#define FALSE	0
#endif

/* Allocation types (flAllocationType, dwFreeType, MEMORY_BASIC_INFORMATION). */
#define MEM_COMMIT			0x00001000
#define MEM_RESERVE			0x00002000
#define MEM_DECOMMIT			0x00004000
#define MEM_REPLACE_PLACEHOLDER		0x00004000
#define MEM_RELEASE			0x00008000
#define MEM_FREE			0x00010000
#define MEM_PRIVATE			0x00020000
#define MEM_MAPPED			0x00040000
#define MEM_RESERVE_PLACEHOLDER		0x00040000
#define MEM_RESET			0x00080000
#define MEM_TOP_DOWN			0x00100000
#define MEM_WRITE_WATCH			0x00200000
#define MEM_PHYSICAL			0x00400000
#define MEM_ROTATE			0x00800000
#define MEM_IMAGE			0x01000000
#define MEM_RESET_UNDO			0x01000000
#define MEM_LARGE_PAGES			0x20000000
#define MEM_4MB_PAGES			0x80000000
#define MEM_64K_PAGES			(MEM_LARGE_PAGES | MEM_PHYSICAL)
#define MEM_COALESCE_PLACEHOLDERS	0x00000001
#define MEM_PRESERVE_PLACEHOLDER	0x00000002
#define AT_ROUND_TO_PAGE		0x40000000

/* Page protection. */
#define PAGE_NOACCESS			0x01
#define PAGE_READONLY			0x02
#define PAGE_READWRITE			0x04
#define PAGE_WRITECOPY			0x08
#define PAGE_EXECUTE			0x10
#define PAGE_EXECUTE_READ		0x20
#define PAGE_EXECUTE_READWRITE		0x40
#define PAGE_EXECUTE_WRITECOPY		0x80
#define PAGE_GUARD			0x100
#define PAGE_NOCACHE			0x200
#define PAGE_WRITECOMBINE		0x400
#define PAGE_ENCLAVE_UNVALIDATED	0x20000000
#define PAGE_TARGETS_INVALID		0x40000000
#define PAGE_TARGETS_NO_UPDATE		0x40000000

#define WRITE_WATCH_FLAG_RESET		0x01

#define EXCEPTION_READ_FAULT		0
#define EXCEPTION_WRITE_FAULT		1
#define EXCEPTION_EXECUTE_FAULT		8

/* Processor information (SYSTEM_INFO). */
#define PROCESSOR_ARCHITECTURE_INTEL	0
#define PROCESSOR_ARCHITECTURE_ARM	5
#define PROCESSOR_ARCHITECTURE_IA64	6
#define PROCESSOR_ARCHITECTURE_AMD64	9
#define PROCESSOR_ARCHITECTURE_ARM64	12
#define PROCESSOR_ARCHITECTURE_UNKNOWN	0xffff
#define PROCESSOR_INTEL_386		386
#define PROCESSOR_INTEL_486		486
#define PROCESSOR_INTEL_PENTIUM		586
#define PROCESSOR_AMD_X8664		8664
#define PROCESSOR_ARM			7

/* Win32 error codes (GetLastError). */
#define ERROR_SUCCESS			0
#define NO_ERROR			0
#define ERROR_INVALID_FUNCTION		1
#define ERROR_ACCESS_DENIED		5
#define ERROR_INVALID_HANDLE		6
#define ERROR_NOT_ENOUGH_MEMORY		8
#define ERROR_OUTOFMEMORY		14
#define ERROR_BAD_LENGTH		24
#define ERROR_GEN_FAILURE		31
#define ERROR_NOT_SUPPORTED		50
#define ERROR_INVALID_PARAMETER		87
#define ERROR_CALL_NOT_IMPLEMENTED	120
#define ERROR_INSUFFICIENT_BUFFER	122
#define ERROR_DISCARDED			157
#define ERROR_NOT_LOCKED		158
#define ERROR_NO_MORE_ITEMS		259
#define ERROR_PARTIAL_COPY		299
#define ERROR_MR_MID_NOT_FOUND		317
#define ERROR_INVALID_ADDRESS		487
#define ERROR_NOACCESS			998
#define ERROR_SWAPERROR			999
#define ERROR_STACK_OVERFLOW		1001
#define ERROR_NO_SYSTEM_RESOURCES	1450
#define ERROR_WORKING_SET_QUOTA		1453
#define ERROR_COMMITMENT_LIMIT		1455
#define ERROR_INVALID_USER_BUFFER	1784

/*
 * NTSTATUS values, typed DWORD as winnt.h types the exception codes, so that
 * they compare equal to ExceptionCode and GetLastError().
 */
#define STATUS_SUCCESS			((DWORD)0x00000000L)
#define STATUS_WORKING_SET_LIMIT_RANGE	((DWORD)0x40000002L)
#define STATUS_GUARD_PAGE_VIOLATION	((DWORD)0x80000001L)
#define STATUS_DATATYPE_MISALIGNMENT	((DWORD)0x80000002L)
#define STATUS_BREAKPOINT		((DWORD)0x80000003L)
#define STATUS_SINGLE_STEP		((DWORD)0x80000004L)
#define STATUS_PARTIAL_COPY		((DWORD)0x8000000DL)
#define STATUS_UNSUCCESSFUL		((DWORD)0xC0000001L)
#define STATUS_NOT_IMPLEMENTED		((DWORD)0xC0000002L)
#define STATUS_INVALID_INFO_CLASS	((DWORD)0xC0000003L)
#define STATUS_INFO_LENGTH_MISMATCH	((DWORD)0xC0000004L)
#define STATUS_ACCESS_VIOLATION		((DWORD)0xC0000005L)
#define STATUS_IN_PAGE_ERROR		((DWORD)0xC0000006L)
#define STATUS_INVALID_HANDLE		((DWORD)0xC0000008L)
#define STATUS_INVALID_PARAMETER	((DWORD)0xC000000DL)
#define STATUS_NO_MEMORY		((DWORD)0xC0000017L)
#define STATUS_CONFLICTING_ADDRESSES	((DWORD)0xC0000018L)
#define STATUS_NOT_MAPPED_VIEW		((DWORD)0xC0000019L)
#define STATUS_ILLEGAL_INSTRUCTION	((DWORD)0xC000001DL)
#define STATUS_UNABLE_TO_FREE_VM	((DWORD)0xC000001AL)
#define STATUS_UNABLE_TO_DELETE_SECTION	((DWORD)0xC000001BL)
#define STATUS_INVALID_VIEW_SIZE	((DWORD)0xC000001FL)
#define STATUS_ALREADY_COMMITTED	((DWORD)0xC0000021L)
#define STATUS_NONCONTINUABLE_EXCEPTION	((DWORD)0xC0000025L)
#define STATUS_INVALID_DISPOSITION	((DWORD)0xC0000026L)
#define STATUS_ACCESS_DENIED		((DWORD)0xC0000022L)
#define STATUS_UNABLE_TO_DECOMMIT_VM	((DWORD)0xC000002CL)
#define STATUS_NOT_COMMITTED		((DWORD)0xC000002DL)
#define STATUS_INVALID_PAGE_PROTECTION	((DWORD)0xC0000045L)
#define STATUS_SECTION_PROTECTION	((DWORD)0xC000004EL)
#define STATUS_ARRAY_BOUNDS_EXCEEDED	((DWORD)0xC000008CL)
#define STATUS_FLOAT_DENORMAL_OPERAND	((DWORD)0xC000008DL)
#define STATUS_FLOAT_DIVIDE_BY_ZERO	((DWORD)0xC000008EL)
#define STATUS_FLOAT_INEXACT_RESULT	((DWORD)0xC000008FL)
#define STATUS_FLOAT_INVALID_OPERATION	((DWORD)0xC0000090L)
#define STATUS_FLOAT_OVERFLOW		((DWORD)0xC0000091L)
#define STATUS_FLOAT_STACK_CHECK	((DWORD)0xC0000092L)
#define STATUS_FLOAT_UNDERFLOW		((DWORD)0xC0000093L)
#define STATUS_INTEGER_DIVIDE_BY_ZERO	((DWORD)0xC0000094L)
#define STATUS_INTEGER_OVERFLOW		((DWORD)0xC0000095L)
#define STATUS_PRIVILEGED_INSTRUCTION	((DWORD)0xC0000096L)
#define STATUS_FREE_VM_NOT_AT_BASE	((DWORD)0xC000009FL)
#define STATUS_MEMORY_NOT_ALLOCATED	((DWORD)0xC00000A0L)
#define STATUS_WORKING_SET_QUOTA	((DWORD)0xC00000A1L)
#define STATUS_NOT_SUPPORTED		((DWORD)0xC00000BBL)
#define STATUS_INVALID_USER_BUFFER	((DWORD)0xC00000E8L)
#define STATUS_INVALID_PARAMETER_1	((DWORD)0xC00000EFL)
#define STATUS_INVALID_PARAMETER_2	((DWORD)0xC00000F0L)
#define STATUS_INVALID_PARAMETER_3	((DWORD)0xC00000F1L)
#define STATUS_INVALID_PARAMETER_4	((DWORD)0xC00000F2L)
#define STATUS_INVALID_PARAMETER_5	((DWORD)0xC00000F3L)
#define STATUS_STACK_OVERFLOW		((DWORD)0xC00000FDL)
#define STATUS_COMMITMENT_LIMIT		((DWORD)0xC000012DL)
#define STATUS_INVALID_ADDRESS		((DWORD)0xC0000141L)
#define STATUS_HEAP_CORRUPTION		((DWORD)0xC0000374L)

/* Exception codes under their winbase.h names. */
#define EXCEPTION_ACCESS_VIOLATION		STATUS_ACCESS_VIOLATION
#define EXCEPTION_DATATYPE_MISALIGNMENT		STATUS_DATATYPE_MISALIGNMENT
#define EXCEPTION_BREAKPOINT			STATUS_BREAKPOINT
#define EXCEPTION_SINGLE_STEP			STATUS_SINGLE_STEP
#define EXCEPTION_ARRAY_BOUNDS_EXCEEDED		STATUS_ARRAY_BOUNDS_EXCEEDED
#define EXCEPTION_FLT_DENORMAL_OPERAND		STATUS_FLOAT_DENORMAL_OPERAND
#define EXCEPTION_FLT_DIVIDE_BY_ZERO		STATUS_FLOAT_DIVIDE_BY_ZERO
#define EXCEPTION_FLT_INEXACT_RESULT		STATUS_FLOAT_INEXACT_RESULT
#define EXCEPTION_FLT_INVALID_OPERATION		STATUS_FLOAT_INVALID_OPERATION
#define EXCEPTION_FLT_OVERFLOW			STATUS_FLOAT_OVERFLOW
#define EXCEPTION_FLT_STACK_CHECK		STATUS_FLOAT_STACK_CHECK
#define EXCEPTION_FLT_UNDERFLOW			STATUS_FLOAT_UNDERFLOW
#define EXCEPTION_INT_DIVIDE_BY_ZERO		STATUS_INTEGER_DIVIDE_BY_ZERO
#define EXCEPTION_INT_OVERFLOW			STATUS_INTEGER_OVERFLOW
#define EXCEPTION_PRIV_INSTRUCTION		STATUS_PRIVILEGED_INSTRUCTION
#define EXCEPTION_IN_PAGE_ERROR			STATUS_IN_PAGE_ERROR
#define EXCEPTION_ILLEGAL_INSTRUCTION		STATUS_ILLEGAL_INSTRUCTION
#define EXCEPTION_NONCONTINUABLE_EXCEPTION	STATUS_NONCONTINUABLE_EXCEPTION
#define EXCEPTION_STACK_OVERFLOW		STATUS_STACK_OVERFLOW
#define EXCEPTION_INVALID_DISPOSITION		STATUS_INVALID_DISPOSITION
#define EXCEPTION_GUARD_PAGE			STATUS_GUARD_PAGE_VIOLATION

#define EXCEPTION_NONCONTINUABLE	0x1
#define EXCEPTION_MAXIMUM_PARAMETERS	15

/* What an exception handler or filter returns. */
#define EXCEPTION_EXECUTE_HANDLER	1
#define EXCEPTION_CONTINUE_SEARCH	0
#define EXCEPTION_CONTINUE_EXECUTION	(-1)

typedef struct _EXCEPTION_RECORD {
	DWORD ExceptionCode;
	DWORD ExceptionFlags;
	struct _EXCEPTION_RECORD *ExceptionRecord;
	PVOID ExceptionAddress;
	DWORD NumberParameters;
	ULONG_PTR ExceptionInformation[EXCEPTION_MAXIMUM_PARAMETERS];
} EXCEPTION_RECORD, *PEXCEPTION_RECORD;

/* The x86-64 register context, laid out as in winnt.h. */
#define DECLSPEC_ALIGN(x)	__attribute__((aligned(x)))

typedef struct DECLSPEC_ALIGN(16) _M128A {
	ULONGLONG Low;
	LONGLONG High;
} M128A, *PM128A;

typedef struct DECLSPEC_ALIGN(16) _XMM_SAVE_AREA32 {
	WORD ControlWord;
	WORD StatusWord;
	BYTE TagWord;
	BYTE Reserved1;
	WORD ErrorOpcode;
	DWORD ErrorOffset;
	WORD ErrorSelector;
	WORD Reserved2;
	DWORD DataOffset;
	WORD DataSelector;
	WORD Reserved3;
	DWORD MxCsr;
	DWORD MxCsr_Mask;
	M128A FloatRegisters[8];
	M128A XmmRegisters[16];
	BYTE Reserved4[96];
} XMM_SAVE_AREA32, *PXMM_SAVE_AREA32;

#define CONTEXT_AMD64			0x00100000L
#define CONTEXT_CONTROL			(CONTEXT_AMD64 | 0x1L)
#define CONTEXT_INTEGER			(CONTEXT_AMD64 | 0x2L)
#define CONTEXT_SEGMENTS		(CONTEXT_AMD64 | 0x4L)
#define CONTEXT_FLOATING_POINT		(CONTEXT_AMD64 | 0x8L)
#define CONTEXT_DEBUG_REGISTERS		(CONTEXT_AMD64 | 0x10L)
#define CONTEXT_FULL			(CONTEXT_CONTROL | CONTEXT_INTEGER | \
					 CONTEXT_FLOATING_POINT)
#define CONTEXT_ALL			(CONTEXT_CONTROL | CONTEXT_INTEGER | \
					 CONTEXT_SEGMENTS | \
					 CONTEXT_FLOATING_POINT | \
					 CONTEXT_DEBUG_REGISTERS)

typedef struct DECLSPEC_ALIGN(16) _CONTEXT {
	DWORD64 P1Home;
	DWORD64 P2Home;
	DWORD64 P3Home;
	DWORD64 P4Home;
	DWORD64 P5Home;
	DWORD64 P6Home;
	DWORD ContextFlags;
	DWORD MxCsr;
	WORD SegCs;
	WORD SegDs;
	WORD SegEs;
	WORD SegFs;
	WORD SegGs;
	WORD SegSs;
	DWORD EFlags;
	DWORD64 Dr0;
	DWORD64 Dr1;
	DWORD64 Dr2;
	DWORD64 Dr3;
	DWORD64 Dr6;
	DWORD64 Dr7;
	DWORD64 Rax;
	DWORD64 Rcx;
	DWORD64 Rdx;
	DWORD64 Rbx;
	DWORD64 Rsp;
	DWORD64 Rbp;
	DWORD64 Rsi;
	DWORD64 Rdi;
	DWORD64 R8;
	DWORD64 R9;
	DWORD64 R10;
	DWORD64 R11;
	DWORD64 R12;
	DWORD64 R13;
	DWORD64 R14;
	DWORD64 R15;
	DWORD64 Rip;
	union {
		XMM_SAVE_AREA32 FltSave;
		struct {
			M128A Header[2];
			M128A Legacy[8];
			M128A Xmm0, Xmm1, Xmm2, Xmm3, Xmm4, Xmm5, Xmm6, Xmm7;
			M128A Xmm8, Xmm9, Xmm10, Xmm11, Xmm12, Xmm13, Xmm14,
			      Xmm15;
		};
	};
	M128A VectorRegister[26];
	DWORD64 VectorControl;
	DWORD64 DebugControl;
	DWORD64 LastBranchToRip;
	DWORD64 LastBranchFromRip;
	DWORD64 LastExceptionToRip;
	DWORD64 LastExceptionFromRip;
} CONTEXT, *PCONTEXT;

typedef struct _EXCEPTION_POINTERS {
	PEXCEPTION_RECORD ExceptionRecord;
	PCONTEXT ContextRecord;
} EXCEPTION_POINTERS, *PEXCEPTION_POINTERS;

typedef LONG (CALLBACK *PVECTORED_EXCEPTION_HANDLER)(
	struct _EXCEPTION_POINTERS *ExceptionInfo);
typedef LONG (WINAPI *PTOP_LEVEL_EXCEPTION_FILTER)(
	struct _EXCEPTION_POINTERS *ExceptionInfo);
typedef PTOP_LEVEL_EXCEPTION_FILTER LPTOP_LEVEL_EXCEPTION_FILTER;

typedef struct _MEMORY_BASIC_INFORMATION {
	PVOID BaseAddress;
	PVOID AllocationBase;
	DWORD AllocationProtect;
	WORD PartitionId;
	SIZE_T RegionSize;
	DWORD State;
	DWORD Protect;
	DWORD Type;
} MEMORY_BASIC_INFORMATION, *PMEMORY_BASIC_INFORMATION;

/* VirtualAlloc2's extended parameters. */
typedef enum MEM_EXTENDED_PARAMETER_TYPE {
	MemExtendedParameterInvalidType = 0,
	MemExtendedParameterAddressRequirements,
	MemExtendedParameterNumaNode,
	MemExtendedParameterPartitionHandle,
	MemExtendedParameterUserPhysicalHandle,
	MemExtendedParameterAttributeFlags,
	MemExtendedParameterImageMachine,
	MemExtendedParameterMax
} MEM_EXTENDED_PARAMETER_TYPE, *PMEM_EXTENDED_PARAMETER_TYPE;

#define MEM_EXTENDED_PARAMETER_TYPE_BITS	8
#define NUMA_NO_PREFERRED_NODE			((DWORD)-1)

typedef struct __attribute__((aligned(8))) MEM_EXTENDED_PARAMETER {
	struct {
		DWORD64 Type : MEM_EXTENDED_PARAMETER_TYPE_BITS;
		DWORD64 Reserved : 64 - MEM_EXTENDED_PARAMETER_TYPE_BITS;
	};
	union {
		DWORD64 ULong64;
		PVOID Pointer;
		SIZE_T Size;
		HANDLE Handle;
		DWORD ULong;
	};
} MEM_EXTENDED_PARAMETER, *PMEM_EXTENDED_PARAMETER;

typedef struct _MEM_ADDRESS_REQUIREMENTS {
	PVOID LowestStartingAddress;
	PVOID HighestEndingAddress;
	SIZE_T Alignment;
} MEM_ADDRESS_REQUIREMENTS, *PMEM_ADDRESS_REQUIREMENTS;

typedef struct _SYSTEM_INFO {
	union {
		DWORD dwOemId;
		struct {
			WORD wProcessorArchitecture;
			WORD wReserved;
		};
	};
	DWORD dwPageSize;
	LPVOID lpMinimumApplicationAddress;
	LPVOID lpMaximumApplicationAddress;
	DWORD_PTR dwActiveProcessorMask;
	DWORD dwNumberOfProcessors;
	DWORD dwProcessorType;
	DWORD dwAllocationGranularity;
	WORD wProcessorLevel;
	WORD wProcessorRevision;
} SYSTEM_INFO, *LPSYSTEM_INFO;

/* The pseudo-handle of the calling process, as on Windows. */
#define WINVM_CURRENT_PROCESS	((HANDLE)(LONG_PTR)-1)

WINBASEAPI HANDLE WINAPI GetCurrentProcess(void);
WINBASEAPI DWORD WINAPI GetLastError(void);
WINBASEAPI void WINAPI SetLastError(DWORD dwErrCode);

WINBASEAPI LPVOID WINAPI VirtualAlloc(LPVOID lpAddress, SIZE_T dwSize,
				      DWORD flAllocationType, DWORD flProtect);
WINBASEAPI LPVOID WINAPI VirtualAllocEx(HANDLE hProcess, LPVOID lpAddress,
					SIZE_T dwSize, DWORD flAllocationType,
					DWORD flProtect);
WINBASEAPI PVOID WINAPI VirtualAlloc2(HANDLE Process, PVOID BaseAddress,
				      SIZE_T Size, ULONG AllocationType,
				      ULONG PageProtection,
				      MEM_EXTENDED_PARAMETER *ExtendedParameters,
				      ULONG ParameterCount);
WINBASEAPI BOOL WINAPI VirtualFree(LPVOID lpAddress, SIZE_T dwSize,
				   DWORD dwFreeType);
WINBASEAPI BOOL WINAPI VirtualFreeEx(HANDLE hProcess, LPVOID lpAddress,
				     SIZE_T dwSize, DWORD dwFreeType);
WINBASEAPI SIZE_T WINAPI VirtualQuery(LPCVOID lpAddress,
				      PMEMORY_BASIC_INFORMATION lpBuffer,
				      SIZE_T dwLength);
WINBASEAPI SIZE_T WINAPI VirtualQueryEx(HANDLE hProcess, LPCVOID lpAddress,
					PMEMORY_BASIC_INFORMATION lpBuffer,
					SIZE_T dwLength);
WINBASEAPI BOOL WINAPI VirtualProtect(LPVOID lpAddress, SIZE_T dwSize,
				      DWORD flNewProtect,
				      PDWORD lpflOldProtect);
WINBASEAPI BOOL WINAPI VirtualProtectEx(HANDLE hProcess, LPVOID lpAddress,
					SIZE_T dwSize, DWORD flNewProtect,
					PDWORD lpflOldProtect);
WINBASEAPI BOOL WINAPI VirtualLock(LPVOID lpAddress, SIZE_T dwSize);
WINBASEAPI BOOL WINAPI VirtualUnlock(LPVOID lpAddress, SIZE_T dwSize);
WINBASEAPI UINT WINAPI GetWriteWatch(DWORD dwFlags, PVOID lpBaseAddress,
				     SIZE_T dwRegionSize, PVOID *lpAddresses,
				     ULONG_PTR *lpdwCount,
				     LPDWORD lpdwGranularity);
WINBASEAPI UINT WINAPI ResetWriteWatch(LPVOID lpBaseAddress,
				       SIZE_T dwRegionSize);
WINBASEAPI void WINAPI GetSystemInfo(LPSYSTEM_INFO lpSystemInfo);
WINBASEAPI void WINAPI GetNativeSystemInfo(LPSYSTEM_INFO lpSystemInfo);
WINBASEAPI SIZE_T WINAPI GetLargePageMinimum(void);
WINBASEAPI BOOL WINAPI IsBadReadPtr(LPCVOID lp, UINT_PTR ucb);
WINBASEAPI BOOL WINAPI IsBadWritePtr(LPVOID lp, UINT_PTR ucb);
WINBASEAPI BOOL WINAPI IsBadHugeReadPtr(LPCVOID lp, UINT_PTR ucb);
WINBASEAPI BOOL WINAPI IsBadHugeWritePtr(LPVOID lp, UINT_PTR ucb);
WINBASEAPI BOOL WINAPI IsBadCodePtr(FARPROC lpfn);
WINBASEAPI BOOL WINAPI IsBadStringPtrA(LPCSTR lpsz, UINT_PTR ucchMax);
WINBASEAPI BOOL WINAPI IsBadStringPtrW(LPCWSTR lpsz, UINT_PTR ucchMax);
WINBASEAPI BOOL WINAPI ReadProcessMemory(HANDLE hProcess,
					 LPCVOID lpBaseAddress,
					 LPVOID lpBuffer, SIZE_T nSize,
					 SIZE_T *lpNumberOfBytesRead);
WINBASEAPI BOOL WINAPI WriteProcessMemory(HANDLE hProcess,
					  LPVOID lpBaseAddress,
					  LPCVOID lpBuffer, SIZE_T nSize,
					  SIZE_T *lpNumberOfBytesWritten);
WINBASEAPI BOOL WINAPI FlushInstructionCache(HANDLE hProcess,
					     LPCVOID lpBaseAddress,
					     SIZE_T dwSize);

WINBASEAPI PVOID WINAPI AddVectoredExceptionHandler(
	ULONG First, PVECTORED_EXCEPTION_HANDLER Handler);
WINBASEAPI ULONG WINAPI RemoveVectoredExceptionHandler(PVOID Handle);
WINBASEAPI PVOID WINAPI AddVectoredContinueHandler(
	ULONG First, PVECTORED_EXCEPTION_HANDLER Handler);
WINBASEAPI ULONG WINAPI RemoveVectoredContinueHandler(PVOID Handle);
WINBASEAPI LPTOP_LEVEL_EXCEPTION_FILTER WINAPI SetUnhandledExceptionFilter(
	LPTOP_LEVEL_EXCEPTION_FILTER lpTopLevelExceptionFilter);
WINBASEAPI void WINAPI RaiseException(DWORD dwExceptionCode,
				      DWORD dwExceptionFlags,
				      DWORD nNumberOfArguments,
				      const ULONG_PTR *lpArguments);

/*
 * Heaps (HeapCreate and friends): flags for HeapCreate, HeapAlloc,
 * HeapReAlloc, HeapFree and the rest, with winnt.h's values.
 */
#define HEAP_NO_SERIALIZE		0x00000001
#define HEAP_GROWABLE			0x00000002
#define HEAP_GENERATE_EXCEPTIONS	0x00000004
#define HEAP_ZERO_MEMORY		0x00000008
#define HEAP_REALLOC_IN_PLACE_ONLY	0x00000010
#define HEAP_TAIL_CHECKING_ENABLED	0x00000020
#define HEAP_FREE_CHECKING_ENABLED	0x00000040
#define HEAP_DISABLE_COALESCE_ON_FREE	0x00000080
#define HEAP_CREATE_ALIGN_16		0x00010000
#define HEAP_CREATE_ENABLE_TRACING	0x00020000
#define HEAP_CREATE_ENABLE_EXECUTE	0x00040000

/* PROCESS_HEAP_ENTRY.wFlags. */
#define PROCESS_HEAP_REGION		0x0001
#define PROCESS_HEAP_UNCOMMITTED_RANGE	0x0002
#define PROCESS_HEAP_ENTRY_BUSY		0x0004
#define PROCESS_HEAP_SEG_ALLOC		0x0008
#define PROCESS_HEAP_ENTRY_MOVEABLE	0x0010
#define PROCESS_HEAP_ENTRY_DDESHARE	0x0020

typedef struct _PROCESS_HEAP_ENTRY {
	PVOID lpData;
	DWORD cbData;
	BYTE cbOverhead;
	BYTE iRegionIndex;
	WORD wFlags;
	union {
		struct {
			HANDLE hMem;
			DWORD dwReserved[3];
		} Block;
		struct {
			DWORD dwCommittedSize;
			DWORD dwUnCommittedSize;
			LPVOID lpFirstBlock;
			LPVOID lpLastBlock;
		} Region;
	};
} PROCESS_HEAP_ENTRY, *LPPROCESS_HEAP_ENTRY, *PPROCESS_HEAP_ENTRY;

typedef struct _HEAP_SUMMARY {
	DWORD cb;
	SIZE_T cbAllocated;
	SIZE_T cbCommitted;
	SIZE_T cbReserved;
	SIZE_T cbMaxReserve;
} HEAP_SUMMARY, *PHEAP_SUMMARY, *LPHEAP_SUMMARY;

typedef enum _HEAP_INFORMATION_CLASS {
	HeapCompatibilityInformation = 0,
	HeapEnableTerminationOnCorruption = 1,
	HeapOptimizeResources = 3,
} HEAP_INFORMATION_CLASS;

#define HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION	1

typedef struct _HEAP_OPTIMIZE_RESOURCES_INFORMATION {
	DWORD Version;
	DWORD Flags;
} HEAP_OPTIMIZE_RESOURCES_INFORMATION, *PHEAP_OPTIMIZE_RESOURCES_INFORMATION;

/* Global* and Local* flags (GlobalAlloc's uFlags, GlobalFlags' result). */
#define GMEM_FIXED		0x0000
#define GMEM_MOVEABLE		0x0002
#define GMEM_NOCOMPACT		0x0010
#define GMEM_NODISCARD		0x0020
#define GMEM_ZEROINIT		0x0040
#define GMEM_MODIFY		0x0080
#define GMEM_DISCARDABLE	0x0100
#define GMEM_NOT_BANKED		0x1000
#define GMEM_LOWER		GMEM_NOT_BANKED
#define GMEM_SHARE		0x2000
#define GMEM_DDESHARE		0x2000
#define GMEM_NOTIFY		0x4000
#define GMEM_VALID_FLAGS	0x7f72
#define GMEM_INVALID_HANDLE	0x8000
#define GMEM_DISCARDED		0x4000
#define GMEM_LOCKCOUNT		0x00ff
#define GHND			(GMEM_MOVEABLE | GMEM_ZEROINIT)
#define GPTR			(GMEM_FIXED | GMEM_ZEROINIT)

#define LMEM_FIXED		0x0000
#define LMEM_MOVEABLE		0x0002
#define LMEM_NOCOMPACT		0x0010
#define LMEM_NODISCARD		0x0020
#define LMEM_ZEROINIT		0x0040
#define LMEM_MODIFY		0x0080
#define LMEM_DISCARDABLE	0x0f00
#define LMEM_VALID_FLAGS	0x0f72
#define LMEM_INVALID_HANDLE	0x8000
#define LMEM_DISCARDED		0x4000
#define LMEM_LOCKCOUNT		0x00ff
#define LHND			(LMEM_MOVEABLE | LMEM_ZEROINIT)
#define LPTR			(LMEM_FIXED | LMEM_ZEROINIT)
#define NONZEROLHND		LMEM_MOVEABLE
#define NONZEROLPTR		LMEM_FIXED

#define GlobalDiscard(h)	GlobalReAlloc((h), 0, GMEM_MOVEABLE)
#define LocalDiscard(h)		LocalReAlloc((h), 0, LMEM_MOVEABLE)

/* 56 bytes on x64: dwLength, dwMemoryLoad, then six SIZE_T. */
typedef struct _MEMORYSTATUS {
	DWORD dwLength;
	DWORD dwMemoryLoad;
	SIZE_T dwTotalPhys;
	SIZE_T dwAvailPhys;
	SIZE_T dwTotalPageFile;
	SIZE_T dwAvailPageFile;
	SIZE_T dwTotalVirtual;
	SIZE_T dwAvailVirtual;
} MEMORYSTATUS, *LPMEMORYSTATUS;

/* 64 bytes; dwLength must be sizeof(MEMORYSTATUSEX). */
typedef struct _MEMORYSTATUSEX {
	DWORD dwLength;
	DWORD dwMemoryLoad;
	DWORDLONG ullTotalPhys;
	DWORDLONG ullAvailPhys;
	DWORDLONG ullTotalPageFile;
	DWORDLONG ullAvailPageFile;
	DWORDLONG ullTotalVirtual;
	DWORDLONG ullAvailVirtual;
	DWORDLONG ullAvailExtendedVirtual;
} MEMORYSTATUSEX, *LPMEMORYSTATUSEX;

WINBASEAPI HANDLE WINAPI HeapCreate(DWORD flOptions, SIZE_T dwInitialSize,
				    SIZE_T dwMaximumSize);
WINBASEAPI BOOL WINAPI HeapDestroy(HANDLE hHeap);
WINBASEAPI LPVOID WINAPI HeapAlloc(HANDLE hHeap, DWORD dwFlags,
				   SIZE_T dwBytes);
WINBASEAPI LPVOID WINAPI HeapReAlloc(HANDLE hHeap, DWORD dwFlags,
				     LPVOID lpMem, SIZE_T dwBytes);
WINBASEAPI BOOL WINAPI HeapFree(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem);
WINBASEAPI SIZE_T WINAPI HeapSize(HANDLE hHeap, DWORD dwFlags,
				  LPCVOID lpMem);
WINBASEAPI BOOL WINAPI HeapValidate(HANDLE hHeap, DWORD dwFlags,
				    LPCVOID lpMem);
WINBASEAPI SIZE_T WINAPI HeapCompact(HANDLE hHeap, DWORD dwFlags);
WINBASEAPI BOOL WINAPI HeapLock(HANDLE hHeap);
WINBASEAPI BOOL WINAPI HeapUnlock(HANDLE hHeap);
WINBASEAPI BOOL WINAPI HeapWalk(HANDLE hHeap, LPPROCESS_HEAP_ENTRY lpEntry);
WINBASEAPI BOOL WINAPI HeapSummary(HANDLE hHeap, DWORD dwFlags,
				   LPHEAP_SUMMARY lpSummary);
WINBASEAPI BOOL WINAPI HeapQueryInformation(
	HANDLE HeapHandle, HEAP_INFORMATION_CLASS HeapInformationClass,
	PVOID HeapInformation, SIZE_T HeapInformationLength,
	PSIZE_T ReturnLength);
WINBASEAPI BOOL WINAPI HeapSetInformation(
	HANDLE HeapHandle, HEAP_INFORMATION_CLASS HeapInformationClass,
	PVOID HeapInformation, SIZE_T HeapInformationLength);
WINBASEAPI HANDLE WINAPI GetProcessHeap(void);
WINBASEAPI DWORD WINAPI GetProcessHeaps(DWORD NumberOfHeaps,
					PHANDLE ProcessHeaps);

WINBASEAPI HGLOBAL WINAPI GlobalAlloc(UINT uFlags, SIZE_T dwBytes);
WINBASEAPI HGLOBAL WINAPI GlobalReAlloc(HGLOBAL hMem, SIZE_T dwBytes,
					UINT uFlags);
WINBASEAPI HGLOBAL WINAPI GlobalFree(HGLOBAL hMem);
WINBASEAPI LPVOID WINAPI GlobalLock(HGLOBAL hMem);
WINBASEAPI BOOL WINAPI GlobalUnlock(HGLOBAL hMem);
WINBASEAPI SIZE_T WINAPI GlobalSize(HGLOBAL hMem);
WINBASEAPI UINT WINAPI GlobalFlags(HGLOBAL hMem);
WINBASEAPI HGLOBAL WINAPI GlobalHandle(LPCVOID pMem);
WINBASEAPI HLOCAL WINAPI LocalAlloc(UINT uFlags, SIZE_T uBytes);
WINBASEAPI HLOCAL WINAPI LocalReAlloc(HLOCAL hMem, SIZE_T uBytes,
				      UINT uFlags);
WINBASEAPI HLOCAL WINAPI LocalFree(HLOCAL hMem);
WINBASEAPI LPVOID WINAPI LocalLock(HLOCAL hMem);
WINBASEAPI BOOL WINAPI LocalUnlock(HLOCAL hMem);
WINBASEAPI SIZE_T WINAPI LocalSize(HLOCAL hMem);
WINBASEAPI UINT WINAPI LocalFlags(HLOCAL hMem);
WINBASEAPI HLOCAL WINAPI LocalHandle(LPCVOID pMem);

WINBASEAPI void WINAPI GlobalMemoryStatus(LPMEMORYSTATUS lpBuffer);
WINBASEAPI BOOL WINAPI GlobalMemoryStatusEx(LPMEMORYSTATUSEX lpBuffer);
WINBASEAPI BOOL WINAPI GetPhysicallyInstalledSystemMemory(
	PULONGLONG TotalMemoryInKilobytes);

/*
 * Memory helpers. As in winnt.h, the Rtl*Memory copies are the C library's
 * and the *Memory names are macros for them; RtlSecureZeroMemory writes
 * through a volatile pointer so that no compiler drops it.
 */
#define RtlEqualMemory(Destination, Source, Length) \
	(!memcmp((Destination), (Source), (Length)))
#define RtlMoveMemory(Destination, Source, Length) \
	memmove((Destination), (Source), (Length))
#define RtlCopyMemory(Destination, Source, Length) \
	memcpy((Destination), (Source), (Length))
#define RtlFillMemory(Destination, Length, Fill) \
	memset((Destination), (Fill), (Length))
#define RtlZeroMemory(Destination, Length) \
	memset((Destination), 0, (Length))
#define EqualMemory	RtlEqualMemory
#define MoveMemory	RtlMoveMemory
#define CopyMemory	RtlCopyMemory
#define FillMemory	RtlFillMemory
#define ZeroMemory	RtlZeroMemory
#define SecureZeroMemory	RtlSecureZeroMemory

static inline PVOID RtlSecureZeroMemory(PVOID ptr, SIZE_T cnt)
{
	volatile char *vptr = (volatile char *)ptr;

	while (cnt) {
		*vptr++ = 0;
		cnt--;
	}
	return ptr;
}

WINBASEAPI SIZE_T WINAPI RtlCompareMemory(const VOID *Source1,
					  const VOID *Source2, SIZE_T Length);

#ifdef __cplusplus
}
#endif

#endif /* LIBWINVM_WINVM_H */
