/**
 * What CC1's own callers send to the CM's storage_image functions and read back, as test
 * data (repository cc1-cloud/cc1; no CC1 code is copied). Each entry names the upstream
 * file the request shape comes from.
 */

/**
 * The CLM forwards a portal's request to the CM as a JSON body with no Content-Type
 * (src/common/utils.py ServerProxy.send_request; src/clm/utils/cm.py), after stripping
 * `login`/`password`, and adds `cm_password` on admin_cm calls (src/clm/utils/decorators.py).
 * The web interface's generic dialogs send ids as digit strings straight from the URL
 * (src/wi/utils/views.py, src/wi/views/user/storage_image.py), the VM page's "Assign disk"
 * too (src/wi/views/user/vm.py); the EC2 front end parses ids as strings (src/ec2/volume.py).
 */
export const portalSequence = (callerId: number, vmId: number) => ({
  /** src/wi/views/user/storage_image.py: the "Create new disk" dialog (form values as strings). */
  create: { caller_id: String(callerId), name: 'portal disk', description: 'from the WI', size: '16', disk_controller: '1', filesystem: '5' },
  /** src/wi/utils/views.py: generic "get by id" of the edit dialog; the id from the URL. */
  getById: (imageId: number) => ({ caller_id: String(callerId), storage_image_id: String(imageId) }),
  /** src/wi/views/user/storage_image.py: the "Edit disk" dialog. */
  edit: (imageId: number) => ({ caller_id: String(callerId), storage_image_id: String(imageId), name: 'renamed in the WI', description: 'edited', disk_controller: '1' }),
  /** src/wi/views/user/vm.py: "Assign disk" on a running VM. */
  attach: (imageId: number) => ({ caller_id: String(callerId), storage_image_id: String(imageId), vm_id: String(vmId) }),
  /** src/wi/views/user/vm.py: "Revoke disk". */
  detach: (imageId: number) => ({ caller_id: String(callerId), storage_image_id: String(imageId), vm_id: String(vmId) }),
  /** src/wi/views/user/storage_image.py: "Remove". */
  delete: (imageId: number) => ({ caller_id: String(callerId), storage_image_id: String(imageId) }),
  /** src/wi/templates/resources/disks.html + media/js/sthTable.js: the disks table. */
  getList: { caller_id: String(callerId) },
});

/** src/clm/utils/decorators.py: the CLM adds the CM's password to every admin_cm call; the CM ignores it for this function. */
export const adminCalls = (adminId: number, imageId: number) => ({
  getList: { caller_id: adminId, cm_password: 'secret-of-the-cm' },
  getById: { caller_id: String(adminId), storage_image_id: String(imageId), cm_password: 'secret-of-the-cm' },
  edit: { caller_id: String(adminId), storage_image_id: String(imageId), name: 'renamed by an admin', cm_password: 'secret-of-the-cm' },
});

/** The fields the WI's disks table and the EC2 front end read of an image dict, with their types. */
export const DICT_FIELD_TYPES: Record<string, 'number' | 'string' | 'number|string'> = {
  storage_image_id: 'number',
  image_id: 'number',
  user_id: 'number',
  name: 'string',
  description: 'string',
  disk_controller: 'number',
  creation_date: 'string',
  progress: 'number',
  state: 'number',
  size: 'number',
  disk_dev: 'string',
  vm_id: 'number|string', // '' when detached, as CC1's dict
  vm_name: 'string',
};

/**
 * The EC2 front end's date parser (src/ec2/helpers/parse.py `parseClmDate`): Python's
 * `strptime(date, "%d.%m.%Y, %H:%M:%S")`, returning None when it does not match. The same
 * reading, written for the test.
 */
export const parseClmDate = (text: string): Date | null => {
  const m = /^([0-9]{2})\.([0-9]{2})\.([0-9]{4}), ([0-9]{2}):([0-9]{2}):([0-9]{2})$/.exec(text);
  if (!m) return null;
  const [, d, mo, y, h, mi, s] = m.map(Number) as number[];
  return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
};

/**
 * The portal's "Create new disk" dialog (src/wi/views/user/storage_image.py
 * `res_ajax_add_disk`) asks `user/user/check_quota/` through the CLM, which forwards it
 * unchanged (src/clm/views/user/user.py `check_quota`, `@cm_request`) with the `caller_id`
 * its auth step set from the logged-in user, an int (src/clm/utils/decorators.py `auth`).
 * The dialog shows `quota['storage'] - quota['used_storage']` as the free space, in MB.
 */
export const checkQuotaCall = (callerId: number) => ({ path: '/user/user/check_quota/', body: { caller_id: callerId } });

/** The storage fields of CC1's `User.long_dict` (src/cm/models/user.py) that the dialog reads, and user_id. */
export const QUOTA_FIELD_TYPES: Record<string, 'number'> = { user_id: 'number', storage: 'number', used_storage: 'number' };
