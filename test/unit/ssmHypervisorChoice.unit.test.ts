/** CC1_HYPERVISOR=auto|libvirt|simulated (local/hypervisorChoice.ts). */
import { chooseHypervisor } from '../../local/hypervisorChoice';

const yes = async () => true;
const no = async () => false;

it('auto picks libvirt when it answers, else the simulated virsh, and says so', async () => {
  await expect(chooseHypervisor(undefined, yes)).resolves.toMatchObject({ kind: 'libvirt', sentence: expect.stringContaining('real libvirt') });
  await expect(chooseHypervisor('auto', no)).resolves.toMatchObject({ kind: 'simulated', sentence: expect.stringContaining('simulated') });
});

it('honours explicit choices, and refuses libvirt when it does not answer', async () => {
  await expect(chooseHypervisor('simulated', yes)).resolves.toMatchObject({ kind: 'simulated' });
  await expect(chooseHypervisor('libvirt', yes)).resolves.toMatchObject({ kind: 'libvirt' });
  await expect(chooseHypervisor('libvirt', no)).rejects.toThrow(/setup-libvirt/);
  await expect(chooseHypervisor('kvm', yes)).rejects.toThrow(/auto, libvirt or simulated/);
});
