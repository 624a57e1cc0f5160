"""The communication model in docs/scaling.md: per block and token, the bytes each tensor-parallel
rank all-reduces in a training step, its compute, and the bus bandwidth that hides one behind
the other on an H100 SXM at 50% MFU. Prints: block, tokens, tp, MFLOP, bytes, ns, GB/s."""
R=0.5*989e12  # achieved bf16 FLOP/s on an H100 SXM at 50% MFU
def vit(w,f,n):
    return 2*(4*w*w+2*w*f)+4*n*w, 4  # fwd flops/token, all-reduces/token (train, no remat)
def enc(w,f,S):
    return 2*(4*w*w+3*w*f)+4*S*w, 4
def bw(F,N,w,T):
    bytes_=N*2*w*2*(T-1)/T
    t=3*F/(T*R)
    return bytes_, t, bytes_/t/1e9
for name,w,f,ns in [("ViT-G/14",1664,8192,[256,3364,5776])]:
    for n in ns:
        F,N=vit(w,f,n)
        for T in (4,8):
            b,t,g=bw(F,N,w,T)
            print(name,n,T,round(F/1e6,1),round(b),round(t*1e9,1),round(g))
w,f=2048,5120
for S in [288,3396,5808]:
    F,N=enc(w,f,S)
    for T in (4,8):
        b,t,g=bw(F,N,w,T); print("UL2 enc",S,T,round(F/1e6,1),round(b),round(t*1e9,1),round(g))
# decoder: per decoder token: self(4w^2) + cross q,o (2w^2) + ff(3wf) ; attention 4Tw+4Sw ; per decoder token 6 all-reduces
for S in [288,3396,5808]:
    Tt=64
    F=2*(4*w*w+2*w*w+3*w*f)+4*Tt*w+4*S*w
    # plus cross k,v over S encoder tokens per decoder block, attributed per decoder token: 2*2w^2*S/Tt; and their enter all-reduce S/Tt per dec token
    F+=2*2*w*w*S/Tt
    N=6+S/Tt
    for T in (4,8):
        b,t,g=bw(F,N,w,T); print("UL2 dec",S,T,round(F/1e6,1),round(b),round(t*1e9,1),round(g))
