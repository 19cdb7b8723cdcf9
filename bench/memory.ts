/**
 * Figure 7: the local stack process's own peak memory, VmHWM from /proc/<pid>/status
 * (the kernel's high-water mark of its resident set over its whole life: the HTTP load
 * of figure 5, the commands of figure 2, its stream pollers), read by the parent just
 * before the stack is closed. DynamoDB Local runs in a separate JVM (a child of the
 * stack process, heap capped in local/dynamo.ts): its RSS and VmHWM are reported next
 * to it, without a target (its SQLite data lives in native memory and grows with what
 * the store figures wrote).
 */
import type { HttpMemory } from './http';
import { round, type FigureResult } from './lib';
import type { StackHandle } from './stackClient';

export const TARGET_MB = 300;

export const runMemory = (stack: StackHandle, during5: Partial<HttpMemory>): FigureResult => {
  const m = stack.memory();
  const peak = m.stack.peakMb;
  return {
    id: 7,
    name: 'memory: peak (VmHWM) of the local stack process over the run; DynamoDB Local JVM beside it',
    measured: peak,
    shown: `${round(peak, 0)} MB (JVM RSS ${m.jvm ? round(m.jvm.rssMb, 0) : '?'} MB, peak ${m.jvm ? round(m.jvm.peakMb, 0) : '?'} MB)`,
    target: `stack VmHWM <= ${TARGET_MB} MB (JVM reported)`,
    pass: peak <= TARGET_MB,
    details: {
      stack: { vmHWMMb: round(peak, 1), vmRSSMbAtEnd: round(m.stack.rssMb, 1) },
      jvm: m.jvm ? { vmRSSMbAtEnd: round(m.jvm.rssMb, 1), vmHWMMb: round(m.jvm.peakMb, 1), pid: stack.info.dynamoPid } : 'pid unknown',
      duringFigure5: during5,
      note: 'read from /proc/<pid>/status (VmHWM, VmRSS) just before the stack closes; the stack process holds the local API server, the stream pollers (projector, disk files), the local Run Command endpoint and the bare server of figure 5; DynamoDB Local is its own JVM process',
    },
  };
};
